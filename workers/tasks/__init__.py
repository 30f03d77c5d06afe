"""Tasks: datasets (bundled or generated) and models, one builder per spec task name.

`TASK_BUILDERS` has exactly the keys of `services.specs.TASKS`, so every task the API
accepts can be built. A builder takes (params, seed, dropout) and returns a `Task`.
"""

from __future__ import annotations

from collections.abc import Callable

from services.specs import TaskParams, TrialSpec
from workers.tasks.base import DatasetTask, Task
from workers.tasks.cartpole import build_cartpole
from workers.tasks.digits import build_digits
from workers.tasks.regression import build_regression
from workers.tasks.text import build_text

__all__ = ["TASK_BUILDERS", "DatasetTask", "Task", "TaskBuilder", "build_task"]

TaskBuilder = Callable[[TaskParams, int, float], Task]

TASK_BUILDERS: dict[str, TaskBuilder] = {
    "digits": build_digits,
    "regression": build_regression,
    "text": build_text,
    "cartpole": build_cartpole,
}


def build_task(spec: TrialSpec) -> Task:
    """The task of a validated trial spec, with its seed and dropout."""
    return TASK_BUILDERS[spec.task.name](spec.task, spec.seed, spec.regularization.dropout)
