"""Tasks: the registry covers the spec's, every task is deterministic for a seed, reports
finite metrics under their documented names, and actually learns; cart-pole physics
against a hand-worked step."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.metrics import r2_score

from services.specs import TASKS, CartpoleTask, TrialSpec
from workers.tasks import TASK_BUILDERS, Task, base, build_task
from workers.tasks import cartpole_env as env
from workers.tasks.cartpole import Cartpole, discounted_returns, play

VARIANTS: dict[str, dict[str, Any]] = {
    "digits-mlp": {"name": "digits"},
    "digits-cnn": {"name": "digits", "model": "cnn", "hidden": [32]},
    "regression": {"name": "regression"},
    # Short sequences: determinism and metrics do not need the default sizes (learning does).
    "text-lstm": {"name": "text", "model": "lstm", "seq_len": 12, "n_samples": 500},
    "text-transformer": {"name": "text", "model": "transformer", "seq_len": 12, "n_samples": 500},
    "cartpole": {"name": "cartpole"},
}


def make_task(task: dict[str, Any], seed: int = 5, dropout: float = 0.1) -> Task:
    spec = TrialSpec.model_validate(
        {"task": task, "seed": seed, "regularization": {"dropout": dropout}}
    )
    return build_task(spec)


def train(task: Task, steps: int, lr: float, batch_size: int = 32, seed: int = 0) -> list[float]:
    torch.manual_seed(seed)  # dropout's masks, as the runner seeds them
    optimizer = torch.optim.Adam(task.model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    batches = itertools.chain.from_iterable(
        task.epoch_batches(batch_size, generator) for _ in itertools.count()
    )
    for batch in itertools.islice(batches, steps):
        optimizer.zero_grad()
        loss = task.loss(batch)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_registry_matches_spec_registry() -> None:
    assert set(TASK_BUILDERS) == set(TASKS)
    assert all(TASKS[name].eval_metrics for name in TASKS)  # every built-in declares them


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_deterministic_for_a_seed(variant: str) -> None:
    rng_state = torch.random.get_rng_state()
    first = make_task(VARIANTS[variant])
    # Building a task must not move the global RNG (dropout masks of what runs next).
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    second = make_task(VARIANTS[variant])
    other = make_task(VARIANTS[variant], seed=6)
    losses = train(first, 20, lr=1e-3)
    assert losses == train(second, 20, lr=1e-3)
    assert losses != train(other, 20, lr=1e-3)
    assert all(math.isfinite(x) for x in losses)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_evaluate_metrics_and_mode(variant: str) -> None:
    task = make_task(VARIANTS[variant])
    assert task.model.training
    metrics = task.evaluate()
    # What the spec declares (and a sweep's metric is checked against) is what is logged.
    assert set(metrics) == set(TASKS[VARIANTS[variant]["name"]].eval_metrics or ())
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
    assert task.model.training  # restored
    task.model.eval()
    assert task.evaluate() == metrics  # deterministic, dropout or not
    assert not task.model.training


@pytest.mark.parametrize("variant", ["digits-mlp", "cartpole"])
def test_resume_replays_an_epoch_from_a_batch(variant: str) -> None:
    task = make_task(VARIANTS[variant])
    generator = torch.Generator().manual_seed(9)
    next(iter(task.epoch_batches(16, generator)))  # some earlier epoch
    state = generator.get_state()
    epoch = list(task.epoch_batches(16, generator))
    generator.set_state(state)
    resumed = list(itertools.islice(task.epoch_batches(16, generator), 3, None))
    assert len(epoch) == task.batches_per_epoch(16)
    assert repr(resumed) == repr(epoch[3:])


@pytest.mark.parametrize("gather_rows", [1 << 16, 100, 1])
@pytest.mark.parametrize("batch_size", [1, 32, 500])
def test_dataset_batches_are_the_rows_of_one_shuffle_in_order(
    gather_rows: int, batch_size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Gathered a chunk at a time or not, batch k is rows order[k*b:(k+1)*b] of the epoch's
    # randperm: what per-step indexing gives, so curves do not depend on the chunking.
    monkeypatch.setattr(base, "GATHER_ROWS", gather_rows)
    task = build_task(TrialSpec.model_validate({"task": "digits"}))
    assert isinstance(task, base.DatasetTask)
    batches = list(task.epoch_batches(batch_size, torch.Generator().manual_seed(3)))
    order = torch.randperm(task.train_size, generator=torch.Generator().manual_seed(3))
    assert len(batches) == task.batches_per_epoch(batch_size)
    for k, (inputs, targets) in enumerate(batches):
        index = order[k * batch_size : (k + 1) * batch_size]
        assert torch.equal(inputs, task.train_x[index]) and inputs.is_contiguous()
        assert torch.equal(targets, task.train_y[index])


def test_regression_r2_matches_sklearn() -> None:
    task = make_task(VARIANTS["regression"], dropout=0.0)
    train(task, 200, lr=3e-3)
    metrics = task.evaluate()
    with torch.no_grad():
        predictions = task.model(task.val_x).squeeze(-1)
    assert metrics["val_r2"] == pytest.approx(r2_score(task.val_y, predictions), abs=1e-5)
    assert metrics["val_r2"] > 0.5


@pytest.mark.parametrize("model", ["lstm", "transformer"])
def test_text_learns_its_long_range_dependency(model: str) -> None:
    task = make_task({"name": "text", "model": model}, dropout=0.0)  # default sizes
    chance = 1 / 16
    assert task.evaluate()["val_accuracy"] < 3 * chance
    train(task, 220, lr=3e-3)
    assert task.evaluate()["val_accuracy"] > 0.5


def test_cartpole_one_step_by_hand() -> None:
    state = np.array([[0.01, -0.02, 0.03, 0.04]])
    got = env.step_states(state, np.array([1]))[0]
    # The classic equations with force +10 N, worked out step by step.
    cos, sin = math.cos(0.03), math.sin(0.03)
    temp = (10.0 + 0.1 * 0.5 * 0.04**2 * sin) / 1.1
    theta_acc = (9.8 * sin - cos * temp) / (0.5 * (4 / 3 - 0.1 * cos**2 / 1.1))
    x_acc = temp - 0.1 * 0.5 * theta_acc * cos / 1.1
    want = [0.01 + 0.02 * -0.02, -0.02 + 0.02 * x_acc, 0.03 + 0.02 * 0.04, 0.04 + 0.02 * theta_acc]
    assert got.tolist() == pytest.approx(want, rel=1e-12)
    # Pushing right accelerates the cart right and tips the pole left (theta falls).
    assert x_acc > 0 > theta_acc


def test_cartpole_termination_and_start() -> None:
    limit = 12 * 2 * math.pi / 360
    states = np.array(
        [
            [2.39, 0, 0, 0],
            [2.41, 0, 0, 0],
            [-2.41, 0, 0, 0],
            [0, 0, limit * 0.99, 0],
            [0, 0, -limit * 1.01, 0],
        ]
    )
    assert env.terminated(states).tolist() == [False, True, True, False, True]
    start = env.initial_states(np.random.default_rng(0), 1000)
    assert start.shape == (1000, 4)
    assert np.abs(start).max() <= 0.05


def test_cartpole_episodes_and_returns() -> None:
    task = make_task(VARIANTS["cartpole"], dropout=0.0)
    assert isinstance(task, Cartpole)
    episodes = play(task.model, np.random.default_rng(3), 6, 500, greedy=False)
    again = play(task.model, np.random.default_rng(3), 6, 500, greedy=False)
    assert episodes.lengths.tolist() == again.lengths.tolist()
    assert torch.equal(episodes.actions, again.actions)
    assert len(episodes.observations) == episodes.lengths.sum() == len(episodes.remaining)
    assert episodes.remaining.min() == 1  # each episode's last step has only itself ahead
    # The truncation cap holds, and every step earns 1.
    capped = play(task.model, np.random.default_rng(3), 6, 5, greedy=False)
    assert capped.lengths.max() <= 5
    assert discounted_returns(np.array([1, 2, 3]), 0.5).tolist() == [1.0, 1.5, 1.75]
    assert discounted_returns(np.array([4]), 1.0).tolist() == [4.0]
    # One batch keeps its episodes: a second loss (an L-BFGS closure) rescores the same ones.
    batch = next(iter(task.epoch_batches(1, torch.Generator().manual_seed(0))))
    assert task.loss(batch).item() == task.loss(batch).item()
    assert len(batch.returns) == task.train_size == task.batch_examples(batch) == 4


def test_cartpole_val_loss_is_the_missing_return_fraction() -> None:
    task = make_task({"name": "cartpole", "max_episode_steps": 50})
    metrics = task.evaluate()
    assert metrics["val_loss"] == pytest.approx((50 - metrics["val_return"]) / 50)
    assert 1 <= metrics["val_return"] <= 50


def test_cartpole_learns() -> None:
    params = CartpoleTask(max_episode_steps=200)
    task = TASK_BUILDERS["cartpole"](params, 0, 0.0)
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(task.model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    returns = []
    for _ in range(3):
        for batch in task.epoch_batches(1, generator):
            optimizer.zero_grad()
            task.loss(batch).backward()
            optimizer.step()
            returns.append(float(np.mean(batch.returns)))
    assert np.mean(returns[-10:]) > 2 * np.mean(returns[:10])
