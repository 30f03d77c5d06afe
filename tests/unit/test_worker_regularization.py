"""Each regularization knob, through the real runner: a spy on the trial's optimizer sees
the gradients every step used and the weights before and after it, and each test asserts
an effect only that knob produces (so deleting the knob fails its test)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from services.scheduling.launcher import RunOutcome
from services.specs import TrialSpec
from tests.support.training import MemorySink, digits, run
from workers import runner
from workers.optim import Training, build_training
from workers.tasks import Task, build_task

Weights = list[torch.Tensor]  # one tensor per parameter, in param-group order
LR = 0.1
SGD = {"name": "sgd", "lr": LR}  # no momentum: one step moves a weight by -lr * its gradient


@dataclass
class Spy:
    """What the runner's optimizer stepped with: per step, the gradients (not for L-BFGS,
    whose closure makes them inside the step) and the weights before and after, each a
    list over the optimizer's parameters (group 0 first)."""

    task: Task | None = None
    training: Training | None = None
    groups: list[int] = field(default_factory=list)  # the param group of each parameter
    grads: list[Weights] = field(default_factory=list)
    before: list[Weights] = field(default_factory=list)
    after: list[Weights] = field(default_factory=list)
    training_mode: list[bool] = field(default_factory=list)

    def build(self, spec: TrialSpec, task: Task) -> Training:
        t = build_training(spec, task)
        params = [p for group in t.optimizer.param_groups for p in group["params"]]
        self.groups = [
            i for i, group in enumerate(t.optimizer.param_groups) for _ in group["params"]
        ]
        self.task, self.training = task, t

        def pre(*_: Any) -> None:
            if not isinstance(t.optimizer, torch.optim.LBFGS):  # its closure makes them
                self.grads.append([_copy(p.grad) for p in params])
            self.before.append([_copy(p) for p in params])
            self.training_mode.append(task.model.training)

        def post(*_: Any) -> None:
            self.after.append([_copy(p) for p in params])

        t.optimizer.register_step_pre_hook(pre)
        t.optimizer.register_step_post_hook(post)
        return t

    def grad_norms(self) -> list[float]:
        return [
            float(torch.linalg.vector_norm(torch.cat([g.flatten() for g in gs])))
            for gs in self.grads
        ]

    def final_weights(self) -> Weights:
        return self.after[-1]


def _copy(t: torch.Tensor | None) -> torch.Tensor:
    assert t is not None, "a parameter without a gradient at the optimizer step"
    return t.detach().clone()


def spied(
    spec: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Spy, MemorySink]:
    """Train `spec` with the runner, spying on its optimizer."""
    spy = Spy()
    with monkeypatch.context() as patch:
        patch.setattr(runner, "build_training", spy.build)
        result, sink = run(spec, tmp_path)
    assert result.outcome is RunOutcome.SUCCEEDED, result.detail
    return spy, sink


def short(**regularization: Any) -> dict[str, Any]:
    """20 SGD steps on digits with a small MLP and these regularization settings."""
    return digits(
        task={"name": "digits", "hidden": [32]},
        optimizer=SGD,
        budget={"max_steps": 20},
        regularization=regularization,
        seed=5,
    )


def with_and_without(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **regularization: Any
) -> tuple[Spy, MemorySink, Spy]:
    """The short run with these regularization settings (its spy and sink), and the same
    run without them (its spy): the same weights and batches up to the first step."""
    knob, sink = spied(short(**regularization), tmp_path / "with", monkeypatch)
    free, _ = spied(short(), tmp_path / "without", monkeypatch)
    return knob, sink, free


# -- gradient clipping ------------------------------------------------------------------------


def test_clip_by_norm_scales_the_gradient_the_step_uses_down_to_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bound = 0.05
    clipped, sink, free = with_and_without(tmp_path, monkeypatch, grad_clip_norm=bound)
    before_clipping = sink.series("grad_norm")  # recorded before clipping
    assert min(before_clipping) > bound and min(free.grad_norms()) > bound
    assert clipped.grad_norms() == pytest.approx([bound] * 20, rel=1e-4)
    # Scaled, not otherwise changed: the first step's gradient is the unclipped one's,
    # times bound / its norm.
    scale = bound / before_clipping[0]
    for seen, unclipped in zip(clipped.grads[0], free.grads[0], strict=True):
        assert torch.allclose(seen, unclipped * scale, rtol=1e-4, atol=1e-9)


def test_clip_by_value_clamps_each_gradient_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bound = 2.0**-10  # exact in float32
    clipped, _, free = with_and_without(tmp_path, monkeypatch, grad_clip_value=bound)
    assert max(float(g.abs().max()) for g in free.grads[0]) > 10 * bound
    for step in clipped.grads:
        assert max(float(g.abs().max()) for g in step) <= bound
    for seen, unclipped in zip(clipped.grads[0], free.grads[0], strict=True):
        assert torch.equal(seen, unclipped.clamp(-bound, bound))


# -- penalties ------------------------------------------------------------------------------


def test_l1_adds_its_subgradient_and_shrinks_the_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    l1 = 0.01
    penalized, _, free = with_and_without(tmp_path, monkeypatch, l1=l1)
    # The same weights and batch at step 0: the gradients differ by l1 * sign(w) exactly.
    for w, seen, plain in zip(penalized.before[0], penalized.grads[0], free.grads[0], strict=True):
        assert torch.allclose(seen - plain, l1 * torch.sign(w), atol=1e-6)
    assert total_abs(penalized.final_weights()) < total_abs(free.final_weights()) - 1.0


def total_abs(weights: Weights) -> float:
    return sum(float(w.abs().sum()) for w in weights)


@pytest.mark.parametrize("where", ["regularization.l2", "optimizer.weight_decay"])
def test_weight_decay_pulls_every_weight_towards_zero_in_the_step(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decay = 0.5
    spec = short()
    if where == "regularization.l2":
        spec["regularization"] = {"l2": decay}
    else:
        spec["optimizer"] = {**SGD, "weight_decay": decay}
    decayed, _ = spied(spec, tmp_path / "l2", monkeypatch)
    free, _ = spied(short(), tmp_path / "free", monkeypatch)
    # Decay acts in the step, not on the gradient: the step-0 gradients are the same, and
    # the weights after it differ by -lr * decay * w.
    lr = LR
    for w, g, g_free, moved, moved_free in zip(
        decayed.before[0],
        decayed.grads[0],
        free.grads[0],
        decayed.after[0],
        free.after[0],
        strict=True,
    ):
        assert torch.equal(g, g_free)
        assert torch.allclose(moved - moved_free, -lr * decay * w, atol=1e-6)


def test_lbfgs_weight_decay_goes_into_the_loss_and_shrinks_the_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lbfgs = {"name": "lbfgs", "lr": 0.5, "history_size": 5, "max_iter": 4}
    spec = digits(
        task={"name": "digits", "hidden": [16]},
        optimizer=lbfgs,
        budget={"max_steps": 5},
        batch_size="full",
    )
    decayed, _ = spied({**spec, "regularization": {"l2": 1.0}}, tmp_path / "l2", monkeypatch)
    free, _ = spied(spec, tmp_path / "free", monkeypatch)
    # torch's LBFGS has no weight decay: only the runner's l2 term can pull the weights in.
    assert "weight_decay" not in decayed.training.optimizer.defaults  # type: ignore[union-attr]
    assert squared(decayed.final_weights()) < 0.5 * squared(free.final_weights())


def squared(weights: Weights) -> float:
    return sum(float(w.square().sum()) for w in weights)


# -- dropout --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "task",
    [
        {"name": "digits", "model": "mlp", "hidden": [16]},
        {"name": "digits", "model": "cnn", "hidden": [16]},
        {"name": "regression", "hidden": [16]},
        {"name": "text", "model": "lstm", "hidden": 16},
        {"name": "text", "model": "transformer", "hidden": 16},
        {"name": "cartpole", "hidden": 16},
    ],
    ids=lambda t: f"{t['name']}-{t.get('model', '')}",
)
def test_dropout_makes_the_built_model_stochastic_in_training_only(task: dict[str, Any]) -> None:
    def losses(dropout: float, train: bool) -> tuple[float, float]:
        spec = TrialSpec.model_validate({"task": task, "regularization": {"dropout": dropout}})
        built = build_task(spec)  # what the runner trains
        batch = next(iter(built.epoch_batches(32, torch.Generator().manual_seed(0))))
        built.model.train(train)
        with torch.no_grad():
            return float(built.loss(batch)), float(built.loss(batch))

    first, second = losses(0.5, train=True)
    assert first != second  # a new mask every forward pass
    assert len(set(losses(0.5, train=False))) == 1
    assert len(set(losses(0.0, train=True))) == 1


def test_the_runner_steps_with_dropout_on_and_evaluates_with_it_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy, sink = spied(short(dropout=0.5), tmp_path, monkeypatch)
    assert spy.task is not None
    assert spy.training_mode == [True] * 20  # after each evaluation too
    # The last evaluation saw the final weights; in eval mode it is reproducible exactly.
    assert spy.task.evaluate()["val_loss"] == sink.points["val_loss"][19]


# -- SWA ------------------------------------------------------------------------------------


def test_swa_averages_the_weights_after_each_step_of_its_phase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start, swa_lr = 12, 0.01
    spec = short(swa={"start_step": start, "swa_lr": swa_lr, "anneal_steps": 3})
    spy, sink = spied(spec, tmp_path, monkeypatch)
    assert spy.training is not None and spy.training.swa is not None and spy.task is not None
    averaged = spy.training.swa.averaged.module
    phase = spy.after[start:]  # the weights after steps start..19
    assert spy.training.swa.n_averaged == len(phase) == 20 - start
    for i, avg in enumerate(averaged.parameters()):
        mean = torch.stack([weights[i] for weights in phase]).mean(0)
        assert torch.allclose(avg, mean, atol=1e-6)
        assert not torch.allclose(avg, spy.after[-1][i])
    assert sink.points["swa_val_loss"] == {19: spy.task.evaluate(averaged)["val_loss"]}
    # SWALR takes the lr from the schedule's to swa_lr over anneal_steps, then holds it.
    lrs = sink.series("lr")
    assert lrs[:start] == [LR] * start
    assert lrs[start + 3 :] == pytest.approx([swa_lr] * (20 - start - 3))


# -- per-layer lr ---------------------------------------------------------------------------


def test_layer_decay_gives_each_layer_its_own_lr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decay = 0.1
    spec = short(layer_decay=decay)
    spec["task"] = {"name": "digits", "hidden": [32, 16]}
    spy, sink = spied(spec, tmp_path, monkeypatch)
    assert sorted(set(spy.groups)) == [0, 1, 2]  # output layer first
    lr = LR
    for step in (0, 19):
        for group, before, grad, after in zip(
            spy.groups, spy.before[step], spy.grads[step], spy.after[step], strict=True
        ):
            # Plain SGD: every weight moved by -(its layer's lr) * its gradient.
            assert torch.allclose(after - before, -lr * decay**group * grad, atol=1e-7)
    assert sink.series("lr/2") == pytest.approx([lr * decay**2] * 20)
