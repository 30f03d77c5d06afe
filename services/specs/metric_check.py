"""Checking a sweep's metric at submission: one its trials log, named where it matters,
ranked the way it probably means.

- Method bayes models the metric and early_stop stops trials by it: both need it named
  (a silent default of val_loss/minimize would optimize what the user did not ask for).
- The metric must be one that every task the sweep trains logs: each task declares its
  evaluation metrics (`TaskParams.eval_metrics`); the trial runner adds train_loss, lr
  and grad_norm every step and samples_per_sec at evaluations, swa_val_loss with SWA and
  sharpness with diagnostics.sharpness_every. early_stop judges trials at evaluations, so
  there the metric must be one of the task's evaluation metrics.
- A metric whose name says higher is better (accuracy, f1, auc, ...) minimized, or one
  whose name says lower is better (loss, error, ...) maximized, gets a warning.
"""

from __future__ import annotations

import re

from services.specs.common import Problem
from services.specs.sweep import SweepSpec
from services.specs.tasks import TASKS
from services.specs.trial_builder import entry_names

__all__ = ["RUNNER_METRICS", "goal_warning", "metric_problems"]

# Logged by the trial runner for every task (see the README, "How a trial runs").
RUNNER_METRICS = ("train_loss", "lr", "grad_norm", "samples_per_sec")
# Logged only when the trial turns on what measures them: metric -> (path, how to say it).
_OPTIONAL = {
    "swa_val_loss": ("regularization.swa", "regularization.swa"),
    "sharpness": ("diagnostics.sharpness_every", "diagnostics.sharpness_every"),
}
# Per-group and per-layer series: `lr/1`, `grad_norm/03.fc`.
_SERIES_PREFIXES = ("lr/", "grad_norm/")

# Words in a metric's name that say which way is better.
_HIGHER = frozenset(
    {
        "acc",
        "accuracy",
        "top1",
        "top5",
        "f1",
        "auc",
        "auroc",
        "auprc",
        "precision",
        "recall",
        "r2",
        "return",
        "reward",
        "score",
        "map",
        "iou",
        "dice",
        "bleu",
        "rouge",
    }
)
_LOWER = frozenset(
    {"loss", "error", "err", "mse", "mae", "rmse", "nll", "perplexity", "ppl", "wer", "cer"}
)


def _needs_a_name(spec: SweepSpec) -> list[str]:
    reasons = []
    if spec.method == "bayes":
        reasons.append("method bayes models the metric to choose each next trial")
    if spec.early_stop is not None:
        reasons.append(f"early_stop ({spec.early_stop.pruner}) stops trials by the metric")
    return reasons


def _turned_on(spec: SweepSpec, path: str) -> bool:
    """Whether some trial of the sweep may set `path` (in its base or its space)."""
    node: object = spec.base
    for part in path.split("."):
        node = getattr(node, part, None)
    swept = any(p == path or p.startswith(f"{path}.") for p in spec.space)
    return node is not None or swept


def _logged_problem(spec: SweepSpec, task: str, evals: tuple[str, ...]) -> str | None:
    name = spec.metric.name
    if spec.early_stop is not None:
        if name in evals:
            return None
        return (
            f"early_stop judges trials at their evaluations, where task {task!r} logs "
            f"{', '.join(evals)}; {name!r} is not among them"
        )
    if name in evals or name in RUNNER_METRICS or name.startswith(_SERIES_PREFIXES):
        return None
    if name in _OPTIONAL:
        path, said = _OPTIONAL[name]
        return None if _turned_on(spec, path) else f"{name} is logged only with {said} set"
    return (
        f"task {task!r} does not log {name!r}; it logs {', '.join(evals)} at each evaluation, "
        f"and {', '.join(RUNNER_METRICS)}"
    )


def metric_problems(spec: SweepSpec, warnings: list[str]) -> list[Problem]:
    """The problems of the sweep's metric; a warning where a task declares no metrics."""
    reasons = _needs_a_name(spec)
    if reasons and "metric" not in spec.model_fields_set:
        example = "metric: {name: val_loss, goal: minimize}"
        return [Problem(("metric",), f"name the metric: {'; '.join(reasons)} ({example})")]
    problems = []
    for task in entry_names(spec, "task"):
        model = TASKS.get(task)
        if model is None:
            continue  # an unknown task is refused where the trials are built
        if model.eval_metrics is None:
            warnings.append(
                f"metric.name: task {task!r} does not declare the metrics it logs, so lrlab "
                f"cannot check that it logs {spec.metric.name!r}"
            )
            continue
        message = _logged_problem(spec, task, model.eval_metrics)
        if message is not None:
            problems.append(Problem(("metric", "name"), message))
            break  # one task that lacks it is enough to say
    warning = goal_warning(spec.metric.name, spec.metric.goal)
    if warning is not None:
        warnings.append(warning)
    return problems


def goal_warning(name: str, goal: str) -> str | None:
    """A warning when the name says the other way is better (`val_accuracy` minimized)."""
    words = set(re.split(r"[^a-z0-9]+", name.lower()))
    higher = bool(words & _HIGHER) or any(w.startswith("acc") for w in words)
    lower = bool(words & _LOWER)
    if higher == lower:
        return None  # neither, or both (`loss_acc`?): no guess
    if higher and goal == "minimize":
        return f"metric.goal: minimizing {name}, where higher is better; did you mean maximize?"
    if lower and goal == "maximize":
        return f"metric.goal: maximizing {name}, where lower is better; did you mean minimize?"
    return None
