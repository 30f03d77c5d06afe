"""The failures users reported on runs the analyzer had never seen, rebuilt as curves.

Each run is made here (numpy, seeded) in the shape the report describes; the analyzer
must give the kind the report's objective check gave, and advice that fits it.
"""

from __future__ import annotations

import numpy as np
import pytest

from services.analyzer import Diagnosis, RunContext, diagnose

N = 3000
STEPS = np.arange(N)
EVALS = STEPS[::50]


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _one(series: dict, ctx: RunContext) -> Diagnosis:
    d = diagnose(series, ctx)
    assert len(d.findings) == 1
    return d


def test_val_loss_tripling_while_train_loss_reaches_exactly_zero_is_overfitting() -> None:
    rng = _rng(1)
    train = np.maximum(2.3 * np.exp(-STEPS / 300) * np.exp(rng.normal(0, 0.1, N)) - 0.01, 0.0)
    assert np.sum(train == 0.0) > N // 3
    val = 0.5 + 1.8 * np.exp(-EVALS / 300) + np.clip((EVALS - 900) / 2100, 0, None) * 2.0
    grad = np.exp(rng.normal(0, 0.3, N)) * np.exp(-STEPS / 1000)
    series = {"train_loss": (STEPS, train), "val_loss": (EVALS, val), "grad_norm": (STEPS, grad)}
    d = _one(series, RunContext(lr=1e-3, optimizer="adam", batch_size=32))
    assert d.kinds == ("overfitting",)


def test_a_loss_flat_at_its_start_with_a_small_flat_gradient_is_vanishing() -> None:
    rng = _rng(2)
    series = {
        "train_loss": (STEPS, 2.302 + rng.normal(0, 0.01, N)),
        "val_loss": (EVALS, 2.302 + rng.normal(0, 0.002, EVALS.size)),
        "lr": (STEPS, np.full(N, 0.1)),
        "grad_norm": (STEPS, 1e-3 * np.exp(rng.normal(0, 0.1, N))),
    }
    f = _one(series, RunContext(lr=0.1, optimizer="sgd", momentum=0.0, batch_size=64)).findings[0]
    assert f.kind == "vanishing_gradients"
    assert "optimizer.lr" not in f.changes
    for cure in ("initialization", "normalization", "residual", "activation"):
        assert cure in f.recommendation


def test_a_warmup_longer_than_the_run_is_slow_convergence_fixed_by_the_warmup() -> None:
    rng = _rng(3)
    series = {
        "train_loss": (STEPS, 2.3 - 0.3 * STEPS / N + rng.normal(0, 0.02, N)),
        "val_loss": (EVALS, 2.3 - 0.3 * EVALS / N),
        "lr": (STEPS, 3e-5 * STEPS / N),
        "grad_norm": (STEPS, np.exp(rng.normal(0, 0.2, N))),
    }
    ctx = RunContext(lr=1e-3, optimizer="adam", warmup_steps=100_000, total_steps=N)
    f = _one(series, ctx).findings[0]
    assert f.kind == "slow_convergence"


def test_a_few_700x_gradient_spikes_in_a_recurrent_net_are_exploding_gradients() -> None:
    rng = _rng(4)
    grad = np.exp(rng.normal(0, 0.2, N))
    loss = (0.3 + 1.4 * np.exp(-STEPS / 600)) * np.exp(rng.normal(0, 0.1, N))
    for k in (700, 1500, 2300):
        grad[k] *= 700
        loss[k : k + 30] *= 3
    series = {
        "train_loss": (STEPS, loss),
        "val_loss": (EVALS, 0.35 + 1.4 * np.exp(-EVALS / 600)),
        "lr": (STEPS, np.full(N, 0.01)),
        "grad_norm": (STEPS, grad),
    }
    f = _one(series, RunContext(lr=0.01, optimizer="sgd", batch_size=32)).findings[0]
    assert f.kind == "exploding_gradients"
    clip = f.changes.get("regularization.grad_clip_norm")
    assert isinstance(clip, float) and clip < 10  # from the stretch before the spikes


@pytest.mark.parametrize("case", ["batch 8", "warmup + cosine"])
def test_healthy_small_batch_and_warmup_cosine_runs_are_healthy(case: str) -> None:
    rng = _rng(5)
    if case == "batch 8":
        loss = (0.1 + 2.2 * np.exp(-STEPS / 400)) * np.exp(rng.normal(0, 0.5, N))
        lr = np.full(N, 0.01)
        grad = np.exp(rng.normal(0, 0.9, N))
        ctx = RunContext(lr=0.01, optimizer="sgd", momentum=0.9, batch_size=8)
    else:
        loss = (0.05 + 2.2 * np.exp(-STEPS / 350)) * np.exp(rng.normal(0, 0.2, N))
        cos = 0.5 * (1 + np.cos(np.pi * (STEPS - 300) / (N - 300)))
        lr = np.where(STEPS < 300, 1e-3 * STEPS / 300, 1e-3 * cos)
        grad = np.where(STEPS < 300, 1 + 3 * STEPS / 300, 4) * np.exp(rng.normal(0, 0.4, N))
        ctx = RunContext(
            lr=1e-3, optimizer="adamw", schedule="cosine", warmup_steps=300, batch_size=16
        )
    val = 0.12 + 2.2 * np.exp(-EVALS / 380)
    series = {
        "train_loss": (STEPS, loss),
        "val_loss": (EVALS, val),
        "lr": (STEPS, lr),
        "grad_norm": (STEPS, grad),
    }
    assert _one(series, ctx).kinds == ("healthy",)


def test_a_five_percent_val_rise_with_accuracy_unchanged_is_not_overfitting() -> None:
    rng = _rng(6)
    val = 0.150 + 0.008 * EVALS / N + rng.normal(0, 0.001, EVALS.size)
    val[:5] = [0.9, 0.5, 0.3, 0.2, 0.16]
    series = {
        "train_loss": (STEPS, (0.05 + 2.2 * np.exp(-STEPS / 200)) * np.exp(rng.normal(0, 0.1, N))),
        "val_loss": (EVALS, val),
        "val_accuracy": (EVALS, np.full(EVALS.size, 0.95)),
        "lr": (STEPS, np.full(N, 1e-3)),
        "grad_norm": (STEPS, np.exp(rng.normal(0, 0.3, N))),
    }
    assert "overfitting" not in _one(series, RunContext(lr=1e-3, optimizer="adam")).kinds


def test_a_run_stopped_by_the_worker_for_a_blow_up_is_divergence_however_short() -> None:
    series = {"train_loss": ([0, 1, 2, 3, 4], [2.3, 2.1, 9.0, 80.0, 900.0])}
    ctx = RunContext(lr=1.0, stop_reason="diverged: smoothed train_loss 17 is 12.1 x its best")
    assert _one(series, ctx).kinds == ("divergence",)
    assert diagnose(series, RunContext(lr=1.0)).kinds == ("insufficient_data",)


def _bounce_series(loss: np.ndarray, lr: float, grad: np.ndarray) -> dict:
    return {
        "train_loss": (STEPS, loss),
        "lr": (STEPS, np.full(N, lr)),
        "grad_norm": (STEPS, grad),
    }


def test_full_batch_gd_bouncing_period_two_at_a_high_level_is_oscillation() -> None:
    # Full-batch GD past its stability limit: after a first fall the loss alternates
    # between two levels every step, far above what it reached, with no batch noise.
    rng = _rng(7)
    level = 1.2 + 1.1 * np.exp(-STEPS / 60)
    sign = np.where(STEPS % 2 == 0, 1.0, -1.0)
    loss = level * np.exp(0.2 * sign * np.minimum(STEPS / 150, 1.0) + rng.normal(0, 0.005, N))
    grad = 3.0 * np.exp(0.3 * sign + rng.normal(0, 0.01, N))
    ctx = RunContext(lr=0.5, optimizer="sgd", momentum=0.0, batch_size=1797)
    f = _one(_bounce_series(loss, 0.5, grad), ctx).findings[0]
    assert f.kind == "oscillation"
    new_lr = f.changes.get("optimizer.lr")
    assert isinstance(new_lr, float) and new_lr < 0.5


@pytest.mark.parametrize("optimizer", ["sgd", "rmsprop"])
def test_a_minibatch_loss_climbing_back_to_a_high_level_is_oscillation(optimizer: str) -> None:
    # Momentum SGD or RMSProp with too large an lr (the shape of a digits MLP at momentum
    # 0.9 and lr 0.3): the loss falls to a third of its start, then the steps throw the
    # weights out of the valley they found and it bounces back up to near its start.
    rng = _rng(8)
    fall = 0.7 + 1.6 * np.exp(-STEPS / 250)
    climb = 1.1 * np.clip((STEPS - 1000) / (N - 1000), 0, None)
    loss = (fall + climb) * np.exp(rng.normal(0, 0.15, N))
    grad = 2.0 * (1 + climb) * np.exp(rng.normal(0, 0.3, N))
    lr, momentum = (0.3, 0.9) if optimizer == "sgd" else (0.03, None)
    ctx = RunContext(lr=lr, optimizer=optimizer, momentum=momentum, batch_size=32)
    f = _one(_bounce_series(loss, lr, grad), ctx).findings[0]
    assert f.kind == "oscillation"
    new_lr = f.changes.get("optimizer.lr")
    assert isinstance(new_lr, float) and new_lr < lr


def test_a_converging_run_whose_first_gradient_was_its_largest_is_not_exploding() -> None:
    # Full-batch GD on a regression: the first steps' gradient is a hundred times the
    # norm the run settles to as it converges. That is a fall, not growth.
    rng = _rng(9)
    loss = (0.002 + 1.1 * np.exp(-STEPS / 8) + 0.01 * np.exp(-STEPS / 600)) * np.exp(
        rng.normal(0, 0.002, N)
    )
    grad = (0.004 + 2.0 * np.exp(-STEPS / 3) + 0.02 * np.exp(-STEPS / 500)) * np.exp(
        rng.normal(0, 0.01, N)
    )
    series = {
        "train_loss": (STEPS, loss),
        "lr": (STEPS, np.full(N, 0.1)),
        "grad_norm": (STEPS, grad),
    }
    ctx = RunContext(lr=0.1, optimizer="sgd", momentum=0.0, batch_size=200)
    assert _one(series, ctx).kinds == ("healthy",)
