"""The runner's sharpness diagnostic, with real torch training: logged every N steps,
exact on a model whose Hessian is known, and invisible in the training curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from services.scheduling.launcher import RunOutcome
from services.specs import TrialSpec
from tests.support.autograd import OnceOnlyTanh
from tests.support.training import run
from workers import runner
from workers.tasks import Task, build_task
from workers.tasks.base import DatasetTask


def sgd_run(task: dict[str, Any], **over: Any) -> dict[str, Any]:
    return {
        "task": task,
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
        "budget": {"max_steps": 45},
        "eval_every": 15,
        **over,
    }


@pytest.mark.parametrize(
    "task",
    [{"name": "digits"}, {"name": "digits", "model": "cnn"}],
    ids=["mlp-dropout", "cnn-batchnorm-dropout"],
)
def test_sharpness_is_logged_every_n_steps_and_training_is_unchanged(
    task: dict[str, Any], tmp_path: Path
) -> None:
    # Dropout draws random masks and BatchNorm keeps running statistics: both would move
    # the curve if the extra forward passes of the estimate leaked into the trial.
    spec = sgd_run(task, regularization={"dropout": 0.3})
    bare_result, bare = run(spec, tmp_path / "bare")
    measured_spec = {**spec, "diagnostics": {"sharpness_every": 7, "sharpness_iters": 5}}
    result, measured = run(measured_spec, tmp_path / "measured")

    assert bare_result.outcome is result.outcome is RunOutcome.SUCCEEDED
    assert sorted(measured.points["sharpness"]) == list(range(0, 45, 7))
    assert all(v > 0 and torch.isfinite(torch.tensor(v)) for v in measured.series("sharpness"))
    assert "sharpness" not in bare.points
    for name in ("train_loss", "grad_norm", "val_loss", "val_accuracy"):
        assert measured.points[name] == bare.points[name], name


def test_logged_sharpness_is_the_top_eigenvalue_of_a_known_hessian(tmp_path: Path) -> None:
    # A linear model under mean squared error, full batch: the Hessian in (w, b) is
    # 2/n [X 1]^T [X 1] at every step, whatever the weights.
    task = {"name": "regression", "hidden": [], "n_samples": 500, "n_features": 6}
    spec = sgd_run(
        task,
        batch_size="full",
        optimizer={"name": "sgd", "lr": 0.05},
        budget={"max_steps": 20},
        diagnostics={"sharpness_every": 5, "sharpness_iters": 100},
    )
    result, sink = run(spec, tmp_path)
    assert result.outcome is RunOutcome.SUCCEEDED

    built = build_task(TrialSpec.model_validate(spec))
    assert isinstance(built, DatasetTask)
    x = built.train_x.double()
    design = torch.cat([x, torch.ones(len(x), 1, dtype=torch.float64)], dim=1)
    exact = float(torch.linalg.eigvalsh(2 / len(x) * design.T @ design)[-1])
    assert sorted(sink.points["sharpness"]) == [0, 5, 10, 15]
    # Within the 0.1% step-to-step change at which the iteration stops (see TOLERANCE).
    assert sink.series("sharpness") == pytest.approx([exact] * 4, rel=1e-2)


class _OnceOnlyHead(nn.Module):
    """Puts an op without a second derivative on top of a model."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = OnceOnlyTanh.apply(self.inner(x))
        return out


def test_a_model_without_second_derivatives_fails_at_once_saying_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def build_with_head(spec: TrialSpec) -> Task:
        task = build_task(spec)
        task.model = _OnceOnlyHead(task.model)
        return task

    monkeypatch.setattr(runner, "build_task", build_with_head)
    spec = sgd_run({"name": "digits"}, diagnostics={"sharpness_every": 10})
    result, sink = run(spec, tmp_path)
    assert result.outcome is RunOutcome.FAILED
    assert result.detail is not None
    assert "cannot be differentiated twice" in result.detail
    assert "diagnostics.sharpness_every" in result.detail
    assert result.last_step is None and "train_loss" not in sink.points

    # The same model trains without the diagnostic.
    plain, _ = run(sgd_run({"name": "digits"}), tmp_path / "plain")
    assert plain.outcome is RunOutcome.SUCCEEDED
