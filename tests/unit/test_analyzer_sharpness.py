"""The sharpness rule on curves trained with real torch: a divergence seen coming, edge
of stability left alone, adaptive optimizers left out; and its stability limits checked
against torch's own SGD on a quadratic."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from services.analysis.stop_policy import decide_stop
from services.analyzer import Diagnosis, RunContext, diagnose
from services.analyzer.curves import Curves
from services.analyzer.rules_sharpness import first_crossing, limit_of
from services.scheduling.launcher import RunOutcome
from services.specs import TrialSpec
from services.specs.sweep import Policy
from tests.support.training import MemorySink
from workers.checkpoints import CheckpointStore
from workers.runner import train

Series = dict[str, tuple[np.ndarray, np.ndarray]]
LINEAR = {"name": "regression", "hidden": [], "n_samples": 1000}
REG_MLP = {"name": "regression", "n_samples": 1000}


def spec_of(task: dict[str, Any], optimizer: dict[str, Any], **over: Any) -> dict[str, Any]:
    return {
        "task": task,
        "batch_size": "full",
        "optimizer": optimizer,
        "eval_every": 25,
        "diagnostics": {"sharpness_every": 5},
        **over,
    }


# A linear model's Hessian is fixed (~2.3 here): a warmup to lr 1.5 passes 2/lr near lr
# 0.87, about step 85, and the loss blows up some dozens of steps later.
WARMUP_PAST_LIMIT = spec_of(
    LINEAR,
    {"name": "sgd", "lr": 1.5},
    schedule={"name": "constant", "warmup_steps": 150},
    budget={"max_steps": 300},
)
# Full-batch GD whose sharpness climbs past 2/lr while the loss keeps falling.
EDGE_OF_STABILITY = spec_of(REG_MLP, {"name": "sgd", "lr": 0.1}, budget={"max_steps": 300})
ADAM_PAST_2_OVER_LR = {**WARMUP_PAST_LIMIT, "optimizer": {"name": "adam", "lr": 1.5}}


@functools.cache
def _trained(key: str) -> tuple[RunOutcome, Series]:
    spec = {"warmup": WARMUP_PAST_LIMIT, "eos": EDGE_OF_STABILITY, "adam": ADAM_PAST_2_OVER_LR}
    sink = MemorySink()
    with tempfile.TemporaryDirectory() as tmp:
        result = train(
            TrialSpec.model_validate(spec[key]),
            sink=sink,
            checkpoints=CheckpointStore(Path(tmp)),
            control=_NoStop(),
        )
    series = {
        name: (np.array(sorted(points)), np.array([points[s] for s in sorted(points)]))
        for name, points in sink.points.items()
    }
    return result.outcome, series


class _NoStop:
    stop_reason: str | None = None
    last_step: int | None = None


def _prefix(series: Series, end: int) -> Series:
    return {name: (s[s <= end], v[s <= end]) for name, (s, v) in series.items()}


def _diagnose(spec: dict[str, Any], series: Series, *, running: bool) -> Diagnosis:
    total = spec["budget"]["max_steps"] if running else int(series["train_loss"][0][-1]) + 1
    return diagnose(series, RunContext.from_spec(spec, running=running, total_steps=total))


def test_a_crossing_followed_by_a_blow_up_is_warned_live_and_credited_after() -> None:
    outcome, series = _trained("warmup")
    assert outcome is RunOutcome.DIVERGED
    final = _diagnose(WARMUP_PAST_LIMIT, series, running=False).get("divergence")
    assert final is not None and final.severity == "critical"
    warned_at = final.evidence["sharpness_warned_at"]
    assert isinstance(warned_at, int) and final.step is not None
    assert 60 <= warned_at < final.step
    lead = final.step - warned_at
    assert f"at step {warned_at}, {lead} steps earlier." in final.summary
    assert final.evidence["sharpness"] > final.evidence["stability_limit"]

    # Live, a little after the crossing: the loss has not blown up, the warning is there.
    live = _diagnose(WARMUP_PAST_LIMIT, _prefix(series, warned_at + 10), running=True)
    warning = live.get("divergence")
    assert warning is not None and warning.severity == "warning"
    assert warning.step == warned_at and warning.evidence["early_warning"] is True
    assert warning.evidence["step"] == warned_at
    limit = warning.evidence["stability_limit"]
    assert isinstance(limit, float) and isinstance(warning.evidence["lr"], float)
    assert limit == pytest.approx(2 / warning.evidence["lr"])
    assert "passed the stability limit 2/lr = " in warning.summary
    assert "the loss has not blown up yet: lower the lr below" in warning.summary
    new_lr = warning.changes["optimizer.lr"]
    assert isinstance(new_lr, float) and new_lr < 1.5
    # The sharpness alone never stops a trial, even confirmed by a second analysis.
    assert decide_stop(Policy(), live, previously_active={"divergence"}) is None
    # Before the crossing, nothing to report.
    early = _diagnose(WARMUP_PAST_LIMIT, _prefix(series, warned_at - 10), running=True)
    assert early.get("divergence") is None


def test_edge_of_stability_with_a_falling_loss_is_not_warned_once_finished() -> None:
    outcome, series = _trained("eos")
    assert outcome is RunOutcome.SUCCEEDED
    ctx = RunContext.from_spec(EDGE_OF_STABILITY, total_steps=300)
    crossing = first_crossing(Curves(series, ctx), ctx)
    assert crossing is not None  # the sharpness did pass 2/lr ...
    losses = series["train_loss"][1]
    assert losses[-1] < 0.5 * losses[crossing.step]  # ... and the loss kept falling
    diagnosis = _diagnose(EDGE_OF_STABILITY, series, running=False)
    assert diagnosis.get("divergence") is None


def test_adaptive_optimizers_are_not_judged_by_the_raw_hessian() -> None:
    _, series = _trained("adam")
    lr_at_peak = 1.5
    assert float(np.max(series["sharpness"][1])) > 2 / lr_at_peak  # past 2/lr, were it SGD
    for running in (False, True):
        for finding in _diagnose(ADAM_PAST_2_OVER_LR, series, running=running).findings:
            assert "sharpness_warned_at" not in finding.evidence
            assert "early_warning" not in finding.evidence
    ctx = RunContext.from_spec(ADAM_PAST_2_OVER_LR)
    assert limit_of(ctx) is None and first_crossing(Curves(series, ctx), ctx) is None


def _diverges(optimizer: dict[str, Any], curvature: float, steps: int = 400) -> bool:
    """Whether torch's SGD with `optimizer` blows up on 0.5 * curvature * x^2."""
    x = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    kwargs = {k: v for k, v in optimizer.items() if k != "name"}
    opt = torch.optim.SGD([x], **kwargs)
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * curvature * x * x).sum().backward()
        opt.step()
    return abs(float(x.detach())) > 1.0


@pytest.mark.parametrize(
    "optimizer",
    [
        {"name": "sgd", "lr": 0.1},
        {"name": "sgd", "lr": 0.1, "momentum": 0.9},
        {"name": "sgd", "lr": 0.1, "momentum": 0.5, "dampening": 0.5},
        {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True},
    ],
    ids=["plain", "momentum", "dampening", "nesterov"],
)
def test_the_stability_limit_is_where_torch_sgd_starts_to_diverge(
    optimizer: dict[str, Any],
) -> None:
    ctx = RunContext.from_spec({"task": "digits", "optimizer": optimizer})
    limit = limit_of(ctx)
    assert limit is not None
    edge = limit.factor / optimizer["lr"]  # the curvature at the limit
    assert not _diverges(optimizer, 0.98 * edge)
    assert _diverges(optimizer, 1.02 * edge)
