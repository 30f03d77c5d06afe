"""The sweep spec: a base trial spec and a search space of dotted paths into it.

`space` keys are paths such as "optimizer.lr", "batch_size", "schedule.name" or a whole
sub-spec ("optimizer" with a list of optimizer objects). Each trial is the base with the
space's values set at those paths (see `grid.apply_params`).
"""

from __future__ import annotations

import types
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Field, model_validator

from services.specs.bayes import BayesOptions
from services.specs.common import StrictModel, Text, fail
from services.specs.early_stop import EarlyStop
from services.specs.failure_policy import FailurePolicy
from services.specs.params import DistributionParam, ParamSpec, ValuesParam
from services.specs.range_test import LrAuto, check_lr_auto, lift_auto_lr
from services.specs.registry import RegistryParams
from services.specs.trial import TrialSpec

__all__ = ["Metric", "Notify", "Policy", "SweepMethod", "SweepSpec", "check_path"]

SweepMethod = Literal["grid", "random", "bayes", "single"]


class Metric(StrictModel):
    """The series a sweep ranks trials by (its last evaluated value). With `target`, the
    sweep ends as soon as a trial ends with that value reached (<= target when minimizing,
    >= when maximizing): queued trials are cancelled and no new ones are made."""

    spec_label: ClassVar[str] = "metric"

    name: Text = "val_loss"
    goal: Literal["minimize", "maximize"] = "minimize"
    target: float | None = Field(
        default=None, description="End the sweep once a trial's final value reaches this."
    )


class Policy(StrictModel):
    """What the live analyzer may do to this sweep's running trials. A stopped trial ends
    `pruned` with the finding as its stop_reason."""

    spec_label: ClassVar[str] = "policy"

    stop_on_divergence: bool = True
    # Opt-in: an overfitting trial still has a best checkpoint worth keeping to its end.
    stop_on_overfitting: bool = False


NotifyEvent = Literal["finding", "sweep_end"]


def _all_events() -> list[NotifyEvent]:
    return ["finding", "sweep_end"]


class Notify(StrictModel):
    """A webhook that receives a JSON event when a finding of at least `min_severity`
    appears on one of the sweep's trials, and when the sweep ends. Only http(s) URLs whose
    host the server's allowlist (LRLAB_WEBHOOK_ALLOWED_HOSTS) admits are accepted."""

    spec_label: ClassVar[str] = "notify"

    url: Annotated[str, Field(min_length=1, max_length=2000)]
    min_severity: Literal["info", "warning", "critical"] = "warning"
    events: list[NotifyEvent] = Field(default_factory=_all_events, min_length=1, max_length=2)


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    """The spec models a field can hold: one, several (a registry), or none (a value)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) in (Union, types.UnionType):
        return [m for arg in get_args(annotation) for m in _nested_models(arg)]
    return []


def _tuple_length(models: list[type[BaseModel]], part: str) -> int | None:
    """How many items the field `part` holds when it is a fixed tuple (optimizer.betas)."""
    for model in models:
        field = model.model_fields.get(part)
        if field is not None and get_origin(field.annotation) is tuple:
            return len(get_args(field.annotation))
    return None


def check_path(path: str, base: TrialSpec, swept: set[str]) -> None:
    """Raise ValueError unless `path` names a field of the trial spec.

    Below a registry field (optimizer, schedule, task) the base's own entry decides which
    keys exist, unless the sweep also changes that entry (sweeps it whole or its name):
    then a key of any entry is accepted and each combination is checked when built. An
    item of a fixed tuple is named by its index: `optimizer.betas.0` is Adam's beta1.
    """
    parts = path.split(".")
    models: list[type[BaseModel]] = [TrialSpec]
    current: Any = base
    items: int | None = None  # the length of the field just named, when it is a tuple
    for depth, part in enumerate(parts):
        prefix = ".".join(parts[:depth])
        if items is not None and part.isdigit() and depth == len(parts) - 1:
            if int(part) >= items:
                raise ValueError(
                    f"unknown path {path!r}: {prefix} has {items} items, 0 to {items - 1}"
                )
            return
        if not models:
            raise ValueError(f"unknown path {path!r}: {prefix} is a value, not a nested spec")
        entry_swept = any(p in swept for p in _ancestors(prefix)) or f"{prefix}.name" in swept
        if len(models) > 1 and isinstance(current, RegistryParams) and not entry_swept:
            models = [type(current)]
        fields = sorted({name for model in models for name in model.model_fields})
        if part not in fields:
            if depth == 0:
                where = "valid top-level fields"
            elif len(models) == 1 and issubclass(models[0], StrictModel):
                where = f"valid keys of {prefix} ({models[0].label()})"
            else:
                where = f"valid keys of {prefix}"
            raise ValueError(f"unknown path {path!r}; {where}: {', '.join(fields)}")
        items = _tuple_length(models, part)
        models = [
            nested
            for model in models
            if part in model.model_fields
            for nested in _nested_models(model.model_fields[part].annotation)
        ]
        current = getattr(current, part, None) if isinstance(current, BaseModel) else None


def _ancestors(prefix: str) -> list[str]:
    """'a.b' -> ['a', 'a.b']: the paths whose sweeping replaces what is under prefix."""
    parts = prefix.split(".") if prefix else []
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


class SweepSpec(StrictModel):
    """A sweep: trials made from `base` by the values of `space`, run by `method`.

    method defaults to "grid" when space has parameters and "single" when it is empty.
    `seed` drives the sampler (random/bayes); each trial's own seed is base.seed unless
    "seed" is in the space. max_trials null: the grid's size for a grid, otherwise until
    the server's per-sweep cap. `early_stop` picks a pruner (see `specs.early_stop`);
    `bayes` the model of method bayes (see `specs.bayes`); `lr_auto` an lr set by a range
    test first (see `specs.range_test`); `failure_policy` when trials that keep failing
    stop the sweep (see `specs.failure_policy`)."""

    spec_label: ClassVar[str] = "sweep spec"

    name: Text = "sweep"
    description: Text | None = None
    base: TrialSpec
    method: SweepMethod = "single"
    space: dict[str, ParamSpec] = Field(default_factory=dict, max_length=64)
    max_trials: int | None = Field(default=None, ge=1, le=2**31 - 1)
    max_concurrent: int = Field(default=4, ge=1, le=10_000)
    metric: Metric = Field(default_factory=Metric)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    policy: Policy = Field(default_factory=Policy)
    notify: Notify | None = None
    early_stop: EarlyStop | None = None
    bayes: BayesOptions | None = None
    lr_auto: LrAuto | None = None
    # On unless set to null: a sweep whose trials keep failing ends `failed` with why.
    failure_policy: FailurePolicy | None = Field(default_factory=FailurePolicy)

    @model_validator(mode="before")
    @classmethod
    def _default_method(cls, data: Any) -> Any:
        # The default depends on another field, so it is filled in before validation.
        if isinstance(data, dict) and data.get("method") is None:
            data = {**data, "method": "grid" if data.get("space") else "single"}
        return lift_auto_lr(data)  # space[optimizer.lr]: auto -> lr_auto (specs.range_test)

    @model_validator(mode="after")
    def _space_fits_method(self) -> SweepSpec:
        swept = set(self.space)
        for path, param in self.space.items():
            try:
                check_path(path, self.base, swept)
            except ValueError as exc:
                fail(("space", path), str(exc), path, "unknown_path")
            if self.method == "grid" and isinstance(param, DistributionParam):
                fail(
                    ("space", path),
                    f"{path} is a {param.distribution} distribution, which method 'grid' "
                    "cannot enumerate; give values (a list, {values: [...]}) or use method "
                    "random or bayes",
                    path,
                )
            if isinstance(param, ValuesParam) and param.probabilities is not None:
                _weights_fit_method(path, self.method)
        if self.method == "single" and self.space:
            fail(
                ("method",),
                "method 'single' runs the base alone and takes no space "
                f"(it has {', '.join(self.space)}); use grid, random or bayes",
                self.method,
            )
        if self.lr_auto is not None:
            check_lr_auto(self.lr_auto, self.method, swept)
        elif self.method in ("random", "bayes") and not self.space:
            fail(("space",), f"method {self.method!r} needs at least one parameter in space")
        if self.bayes is not None and self.method != "bayes":
            fail(
                ("bayes",),
                f"bayes options apply to method 'bayes' only (method is {self.method!r})",
            )
        if self.method == "single" and self.early_stop is not None:
            fail(
                ("early_stop",),
                "early_stop compares trials with each other; method 'single' runs one trial",
            )
        return self


def _weights_fit_method(path: str, method: str) -> None:
    # Weights are never dropped in silence: only method random draws by them.
    if method != "random":
        does = "enumerates every value" if method == "grid" else "has no prior to put them in"
        fail(
            ("space", path, "probabilities"),
            f"probabilities weight method random's draws; method {method!r} {does}: "
            "drop them or use method random",
        )
