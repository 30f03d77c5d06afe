"""Tasks: datasets (bundled or generated) and models, one builder per spec task name.

`TASK_BUILDERS` has exactly the keys of `services.specs.TASKS` (built-ins and plug-ins), so
every task the API accepts can be built. A builder takes (params, seed, dropout) and
returns a `Task`.

Plug-ins: a package adds a task's builder with an entry point in the "lrlab.tasks" group,
next to its torch-free params model in "lrlab.task_specs" (see `services.specs.tasks`):

    [project.entry-points."lrlab.tasks"]
    quadratic = "my_pkg.task:build_quadratic"  # (params, seed, dropout) -> Task

Builders are loaded once, at import. One that fails to import, is not callable, takes a
built-in name, or has no params model registered under its name is logged and skipped.
A builder's module is imported while this package is, so it takes `DatasetTask` and the
helpers from `workers.tasks.base`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from services.specs import TASKS, TaskParams, TrialSpec
from services.specs.registry import plugin_entries
from workers.tasks.base import DatasetTask, Task
from workers.tasks.cartpole import build_cartpole
from workers.tasks.digits import build_digits
from workers.tasks.regression import build_regression
from workers.tasks.text import build_text

__all__ = ["PLUGIN_GROUP", "TASK_BUILDERS", "DatasetTask", "Task", "TaskBuilder", "build_task"]

log = logging.getLogger("lrlab.plugins")

# The entry point group of plug-in task builders (see the module docstring).
PLUGIN_GROUP = "lrlab.tasks"

TaskBuilder = Callable[[TaskParams, int, float], Task]

TASK_BUILDERS: dict[str, TaskBuilder] = {
    "digits": build_digits,
    "regression": build_regression,
    "text": build_text,
    "cartpole": build_cartpole,
}


def _plugin_builders() -> dict[str, TaskBuilder]:
    added: dict[str, TaskBuilder] = {}
    for name, obj in plugin_entries(PLUGIN_GROUP):
        if name in TASK_BUILDERS or name in added:
            problem = f"the name {name!r} is already taken"
        elif name not in TASKS:
            problem = f"no params model is registered under 'lrlab.task_specs' as {name!r}"
        elif not callable(obj):
            problem = f"{obj!r} is not callable"
        else:
            added[name] = obj
            continue
        log.warning("skipping %s plug-in %r: %s", PLUGIN_GROUP, name, problem)
    return added


TASK_BUILDERS.update(_plugin_builders())


def build_task(spec: TrialSpec) -> Task:
    """The task of a validated trial spec, with its seed and dropout."""
    name = spec.task.name
    builder = TASK_BUILDERS.get(name)
    if builder is None:
        # The API knows the task's params but this worker has no builder for it: the
        # plug-in's "lrlab.tasks" entry point is missing or was skipped here (see the log).
        raise LookupError(f"task {name!r} has no builder on this worker ({PLUGIN_GROUP!r})")
    return builder(spec.task, spec.seed, spec.regularization.dropout)
