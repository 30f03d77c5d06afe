"""Task params: what a trial trains on. All data is offline or generated on the worker
(scikit-learn's bundled digits, synthetic regression and sequences, a simulated cart-pole),
so a trial never downloads anything. Here are only the params; workers build the tasks.

Sizes are capped so that one request cannot ask a worker for an absurd model.

Plug-ins: an installed package adds a task by declaring two entry points, one per side, so
that the API process never imports torch through a plug-in:

    [project.entry-points."lrlab.task_specs"]   # read here, by the API and the scheduler
    quadratic = "my_pkg.specs:QuadraticTask"     # a TaskParams subclass, torch-free,
                                                 # with name: Literal["quadratic"] = "quadratic"
    [project.entry-points."lrlab.tasks"]         # read by workers (see workers.tasks)
    quadratic = "my_pkg.task:build_quadratic"    # (params, seed, dropout) -> workers.tasks.Task

A plug-in's params class should declare `eval_metrics`, the names its `evaluate()`
returns, so that a sweep's metric is checked against them (left None, it is not checked).
They are loaded once, at import. A plug-in that fails to import, is not such a model, or
takes a built-in name is logged and skipped. Plug-in tasks validate, are listed by
GET /tasks, and are chosen by name like the built-ins; no code is accepted over HTTP.
A params module is imported while `services.specs` itself is still being imported, so it
takes `TaskParams` from this module (`services.specs.tasks`), not from the package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, ClassVar, Literal, TypeAlias, Union, get_args

from pydantic import BeforeValidator, Field

from services.specs.registry import (
    RegistryParams,
    check_registry,
    plugin_params,
    registry_parser,
)

__all__ = [
    "PLUGIN_GROUP",
    "TASKS",
    "Activation",
    "CartpoleTask",
    "DigitsTask",
    "RegressionTask",
    "Task",
    "TaskParams",
    "TextTask",
]

# The entry point group of plug-in task params (see the module docstring).
PLUGIN_GROUP = "lrlab.task_specs"

Width = Annotated[int, Field(ge=1, le=4096)]
# Hidden layer widths, input to output; an empty list is a linear model.
Widths = Annotated[list[Width], Field(max_length=16)]
# The dense layers' hidden activation (workers.tasks.base.ACTIVATIONS).
Activation = Literal["relu", "tanh", "sigmoid"]
# A multiplier on the dense layers' initial weights (torch's default init): studying a
# saddle at init (< 1) or an exploding deep stack (> 1) needs it; 1 is the usual model.
InitScale = Annotated[
    float,
    Field(
        default=1.0,
        gt=0,
        le=100,
        description="Multiplies the dense layers' initial weights (1 = torch's default init).",
    ),
]


class TaskParams(RegistryParams):
    spec_kind: ClassVar[str] = "task"

    # The metrics each evaluation of the task logs (its worker's `evaluate()` keys, checked
    # by tests/unit/test_worker_tasks.py): what a sweep may rank and prune by. None: not
    # declared (a plug-in may leave it so), and a sweep's metric is then not checked.
    eval_metrics: ClassVar[tuple[str, ...] | None] = None


class DigitsTask(TaskParams):
    """Classify 8x8 handwritten digits (scikit-learn's bundled set, 1797 images)."""

    eval_metrics: ClassVar[tuple[str, ...] | None] = ("val_loss", "val_accuracy")

    name: Literal["digits"] = "digits"
    model: Literal["mlp", "cnn"] = "mlp"
    hidden: Widths = Field(default_factory=lambda: [128])
    val_fraction: float = Field(default=0.2, gt=0, le=0.5)
    activation: Activation = "relu"
    init_scale: InitScale = 1.0
    train_subset: int | None = Field(
        default=None,
        ge=10,
        le=1797,
        description="Train on only the first N examples of the training split (all of it "
        "if N is larger); the held-out split is unchanged. For studying overfitting.",
    )


class RegressionTask(TaskParams):
    """Fit generated regression data (n_samples x n_features, Gaussian noise) with an MLP."""

    eval_metrics: ClassVar[tuple[str, ...] | None] = ("val_loss", "val_r2")

    name: Literal["regression"] = "regression"
    n_samples: int = Field(default=2000, ge=100, le=1_000_000)
    n_features: int = Field(default=8, ge=1, le=1000)
    noise: float = Field(default=0.1, ge=0)
    hidden: Widths = Field(default_factory=lambda: [64, 64])
    activation: Activation = "relu"
    init_scale: InitScale = 1.0


class TextTask(TaskParams):
    """Next-token prediction on generated sequences with an LSTM or a small transformer."""

    eval_metrics: ClassVar[tuple[str, ...] | None] = ("val_loss", "val_accuracy")

    name: Literal["text"] = "text"
    model: Literal["lstm", "transformer"] = "lstm"
    seq_len: int = Field(default=32, ge=4, le=512)
    vocab_size: int = Field(default=16, ge=4, le=1000)
    n_samples: int = Field(default=4000, ge=100, le=1_000_000)
    hidden: Width = 64


class CartpoleTask(TaskParams):
    """Balance a simulated cart-pole with a policy-gradient learner (no gym needed)."""

    eval_metrics: ClassVar[tuple[str, ...] | None] = ("val_loss", "val_return")

    name: Literal["cartpole"] = "cartpole"
    hidden: Width = 64
    gamma: float = Field(default=0.99, gt=0, le=1, description="Reward discount.")
    episodes_per_update: int = Field(default=4, ge=1, le=1000)
    max_episode_steps: int = Field(default=500, ge=1, le=100_000)


TASKS: dict[str, type[TaskParams]] = {
    "digits": DigitsTask,
    "regression": RegressionTask,
    "text": TextTask,
    "cartpole": CartpoleTask,
}
TASKS.update(plugin_params(PLUGIN_GROUP, TaskParams, TASKS))

if TYPE_CHECKING:
    # Plug-ins are known only at run time, so statically a task is any TaskParams.
    _TaskUnion: TypeAlias = TaskParams
else:
    _TaskUnion = Union[tuple(TASKS.values())]  # noqa: UP007  (X | Y cannot take a tuple)
check_registry(TASKS, get_args(_TaskUnion))

# A field of this type takes {"name": "digits", ...} or the bare name "digits".
Task = Annotated[
    _TaskUnion,
    Field(discriminator="name"),
    BeforeValidator(registry_parser("task", TASKS)),
]
