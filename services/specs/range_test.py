"""The LR range test as specs: its options, the trial that runs it, and `lr: auto`.

A range test trains the base trial's task, model, optimizer and batch size while its lr
ramps exponentially from min_lr to max_lr over `steps` steps (schedule `range_test`), and
stops once the smoothed loss blows up (`stop.loss_above_best`). It runs with
lr_scaling "none", so the recorded `lr` series is the lr the optimizer took.

`lr: auto` in a sweep (`space: {"optimizer.lr": "auto"}`, or
`{"from": "range_test", "min_lr": ..., "values": 5}`) is moved out of the space into the
sweep's `lr_auto` before validation: the range test runs first, and its suggestions then
set the lr's parameter (`resolve_auto_lr`): log-uniform bounds for random and bayes, or
`values` lrs spaced evenly in log across those bounds for a grid.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from services.specs.common import StrictModel, Text, fail
from services.specs.params import DistributionParam, ValuesParam
from services.specs.schedules import RangeTestSchedule
from services.specs.trial import LrScaling, TrialSpec, scaled_lr

__all__ = [
    "AUTO_PATH",
    "DEFAULT_LOSS_ABOVE_BEST",
    "DEFAULT_SMOOTHING",
    "LrAuto",
    "LrAutoResolution",
    "RangeTestOptions",
    "RangeTestRequest",
    "check_lr_auto",
    "lift_auto_lr",
    "range_test_options",
    "range_test_spec",
    "resolve_auto_lr",
]

DEFAULT_SMOOTHING = 0.9
DEFAULT_LOSS_ABOVE_BEST = 4.0
# The one path `auto` may stand at: the lr the range test measures.
AUTO_PATH: Literal["optimizer.lr"] = "optimizer.lr"


class RangeTestOptions(StrictModel):
    """How to run an LR range test."""

    spec_label: ClassVar[str] = "range test"

    min_lr: float = Field(default=1e-7, gt=0, description="The lr of the first step.")
    max_lr: float = Field(default=10.0, gt=0, description="The lr of the last step.")
    steps: int = Field(default=100, ge=10, le=5000, description="Steps of the ramp.")
    smoothing: float = Field(
        default=DEFAULT_SMOOTHING,
        ge=0,
        lt=1,
        description="EMA factor for the loss (bias-corrected); 0 = the raw loss.",
    )
    loss_above_best: float = Field(
        default=DEFAULT_LOSS_ABOVE_BEST,
        gt=1,
        description="Stop once the smoothed loss exceeds this many times its best.",
    )

    @model_validator(mode="after")
    def _ramp_rises(self) -> RangeTestOptions:
        if self.max_lr <= self.min_lr:
            fail(
                ("max_lr",),
                f"max_lr ({self.max_lr}) must be greater than min_lr ({self.min_lr})",
                self.max_lr,
            )
        return self


class RangeTestRequest(RangeTestOptions):
    """POST /lr-find: a range test on `base` (its task, model, optimizer, batch size...)."""

    spec_label: ClassVar[str] = "range test request"

    name: Text = "lr-find"
    base: TrialSpec


def range_test_spec(base: TrialSpec, options: RangeTestOptions) -> TrialSpec:
    """`base` as a range test: its task, model, optimizer, batch size, regularization and
    resources, with the lr ramped from min_lr to max_lr and the blow-up stop. Its own
    schedule, SWA, budget and lr_scaling give way to the ramp."""
    data = base.model_dump(mode="json")
    data["optimizer"]["lr"] = options.min_lr
    data["regularization"]["swa"] = None
    data |= {
        "schedule": {"name": "range_test", "end_lr": options.max_lr},
        "budget": {"max_steps": options.steps},
        "stop": {
            "loss_above_best": options.loss_above_best,
            "loss_above_start": None,  # the ramp's blow-up is judged against the best alone
            "smoothing": options.smoothing,
        },
        "lr_scaling": {"rule": "none"},
        # One evaluation at the end and no checkpoint: a restarted test starts over.
        "eval_every": options.steps,
        "checkpoint_every": options.steps,
    }
    return TrialSpec.model_validate(data)


def range_test_options(spec: TrialSpec) -> RangeTestOptions:
    """The options a range test's trial spec was made from (see range_test_spec)."""
    schedule, stop, steps = spec.schedule, spec.stop, spec.budget.max_steps
    if not isinstance(schedule, RangeTestSchedule) or stop is None or steps is None:
        raise ValueError("not a range test's trial spec (schedule range_test, stop, max_steps)")
    return RangeTestOptions(
        min_lr=spec.optimizer.lr,
        max_lr=schedule.end_lr,
        steps=steps,
        smoothing=stop.smoothing,
        loss_above_best=stop.loss_above_best,
    )


class LrAutoResolution(StrictModel):
    """What the range test said, kept in the sweep once it has (set by the server)."""

    spec_label: ClassVar[str] = "lr_auto.resolution"

    lr: float | None = None  # the recommended lr; None when the test gave none
    low: float | None = None
    high: float | None = None
    summary: str = Field(default="", max_length=4000)


class LrAuto(StrictModel):
    """`optimizer.lr: auto`: a range test with these options sets the lr's parameter.

    `values` is how many lrs a grid tries (evenly spaced in log between the bounds);
    `range_test_sweep_id` names the range test, set by the server when it starts one or
    given to reuse a range test already run (POST /lr-find)."""

    spec_label: ClassVar[str] = "lr_auto"

    path: Literal["optimizer.lr"] = AUTO_PATH
    range_test: RangeTestOptions = Field(default_factory=RangeTestOptions)
    values: int = Field(default=5, ge=2, le=50, description="How many lrs a grid tries.")
    range_test_sweep_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    resolution: LrAutoResolution | None = None


def _auto_form(value: Any) -> dict[str, Any] | None:
    """The LrAuto input of a space entry written as auto, or None for any other entry."""
    if value == "auto":
        return {}
    if isinstance(value, dict) and "from" in value:
        if value["from"] != "range_test":
            raise ValueError(f"'from' must be \"range_test\" (got {value['from']!r})")
        rest = {k: v for k, v in value.items() if k != "from"}
        top = {k: rest.pop(k) for k in ("values", "range_test_sweep_id") if k in rest}
        return {**top, "range_test": rest}
    return None


def lift_auto_lr(data: Any) -> Any:
    """A raw sweep spec with `auto` at space[optimizer.lr] moved to `lr_auto` (what the
    sweep spec's before-validator does). Raises a located error for a malformed entry."""
    if not isinstance(data, dict) or not isinstance(data.get("space"), dict):
        return data
    space = dict(data["space"])
    for path, value in list(space.items()):
        try:
            form = _auto_form(value)
        except ValueError as exc:
            fail(("space", path), str(exc), value)
        if form is None:
            continue
        if path != AUTO_PATH:
            fail(
                ("space", path),
                f"auto is only for {AUTO_PATH} (the lr a range test measures), not {path}",
                value,
            )
        if data.get("lr_auto") is not None:
            fail(("lr_auto",), f"give lr_auto or space[{AUTO_PATH}]: auto, not both")
        del space[path]
        data = {**data, "space": space, "lr_auto": {**form, "path": path}}
    return data


def check_lr_auto(auto: LrAuto, method: str, swept: set[str]) -> None:
    """The sweep-level rules of lr_auto (a located validation error when one is broken)."""
    if method not in ("grid", "random", "bayes"):
        fail(
            ("lr_auto",),
            f"lr: auto needs method grid, random or bayes (method is {method!r}); for a "
            "single job, run POST /lr-find and take its recommended lr",
        )
    for path in ("optimizer", "optimizer.name"):
        if path in swept:
            fail(
                ("space", path),
                "lr: auto runs one range test, with base.optimizer, so it cannot serve a "
                "sweep over optimizers; give each optimizer a sweep of its own",
                path,
            )
    settled = AUTO_PATH in swept
    if auto.resolution is None and settled:
        fail(("space", AUTO_PATH), f"{AUTO_PATH} is auto: the range test fills it in", AUTO_PATH)
    if auto.resolution is not None and not settled:
        fail(("lr_auto", "resolution"), f"a settled lr_auto needs {AUTO_PATH} in space")


def _spec_lr(actual: float, base: TrialSpec) -> float:
    # The test ran without lr_scaling, so it measured the lr at base.batch_size; the spec's
    # lr is the one at lr_scaling.base_batch_size.
    scaling: LrScaling = base.lr_scaling
    if scaling.rule == "none" or not isinstance(base.batch_size, int):
        return actual
    return actual / scaled_lr(1.0, base.batch_size, scaling)


def resolve_auto_lr(
    auto: LrAuto, base: TrialSpec, method: str, low: float, high: float
) -> ValuesParam | DistributionParam:
    """The lr parameter a range test's bounds give: log-uniform for random and bayes, else
    `auto.values` lrs evenly spaced in log from low to high (3 significant digits)."""
    if not (0 < low < high and math.isfinite(high)):
        raise ValueError(f"range test bounds must satisfy 0 < low < high (got {low}, {high})")
    low, high = _spec_lr(low, base), _spec_lr(high, base)
    if method in ("random", "bayes"):
        return DistributionParam(distribution="log_uniform", low=low, high=high)
    n = auto.values
    ratio = math.log(high / low)
    lrs = [float(f"{low * math.exp(ratio * i / (n - 1)):.3g}") for i in range(n)]
    return ValuesParam(values=list(dict.fromkeys(lrs)))
