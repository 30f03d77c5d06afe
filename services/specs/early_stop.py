"""Early stopping: which pruner stops a sweep's weaker trials before their budget ends.

Pruners compare trials on the sweep's metric, counted in evaluations: a resource of r
means "after the trial's r-th evaluation of the metric" (one every `eval_every` steps), so
rungs do not move when eval_every does. A trial that diverges is stopped by the sweep's
policy whatever the pruner says.

- `hyperband` (W&B's early_terminate): trials are compared at fixed rungs and those outside
  the best 1/reduction_factor stop. The rungs are either max_resource divided by
  reduction_factor 1..brackets times (W&B's max_iter and s) or min_resource multiplied by
  it 0, 1, 2... times (W&B's min_iter); `services.search.hyperband` computes them. What a
  trial brings to a rung is its best value so far, or with `strict` (W&B's strict) its
  value at that rung, which stops more trials: one that was good once and got worse.
- `asha`: asynchronous successive halving (Optuna's SuccessiveHalvingPruner): rungs at
  min_resource * reduction_factor ** (min_early_stopping_rate + k).
- `median`: stop a trial whose best value so far is worse than the median of the other
  trials at the same evaluation (Optuna's MedianPruner).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, model_validator

from services.specs.common import StrictModel, fail

__all__ = ["PRUNERS", "AshaStop", "EarlyStop", "HyperbandStop", "MedianStop"]


class HyperbandStop(StrictModel):
    """Rungs from min_resource upwards, or brackets rungs below max_resource."""

    spec_label: ClassVar[str] = "early_stop (hyperband)"

    pruner: Literal["hyperband"] = "hyperband"
    min_resource: int | None = Field(
        default=None,
        ge=1,
        le=2**31 - 1,
        description="The first rung (W&B min_iter); 1 if unset and brackets is unset.",
    )
    max_resource: int | None = Field(
        default=None,
        ge=1,
        le=2**31 - 1,
        description="The last evaluation considered (W&B max_iter); unset: the trial's length.",
    )
    brackets: int | None = Field(
        default=None, ge=1, le=100, description="How many rungs below max_resource (W&B s)."
    )
    reduction_factor: float = Field(
        default=3.0, gt=1, le=1000, description="Keep the best 1/reduction_factor (W&B eta)."
    )
    strict: bool = Field(
        default=False,
        description="Judge a trial by its value at the rung, not its best so far (W&B strict).",
    )

    @model_validator(mode="after")
    def _one_form(self) -> HyperbandStop:
        if self.brackets is None:
            return self
        if self.min_resource is not None:
            fail(
                ("min_resource",),
                "set min_resource (rungs upwards from it) or brackets with max_resource "
                "(rungs downwards from it), not both",
                self.min_resource,
            )
        if self.max_resource is None:
            fail(("brackets",), "brackets needs max_resource to count down from", self.brackets)
        if self.max_resource < self.reduction_factor:
            fail(
                ("max_resource",),
                f"max_resource ({self.max_resource}) / reduction_factor "
                f"({self.reduction_factor:g}) is below 1, which leaves no rung",
                self.max_resource,
            )
        return self


class AshaStop(StrictModel):
    """Asynchronous successive halving."""

    spec_label: ClassVar[str] = "early_stop (asha)"

    pruner: Literal["asha"] = "asha"
    min_resource: int = Field(default=1, ge=1, le=2**31 - 1, description="The first rung.")
    reduction_factor: int = Field(default=4, ge=2, le=1000)
    min_early_stopping_rate: int = Field(default=0, ge=0, le=30)


class MedianStop(StrictModel):
    """Stop a trial worse than the median of the others at the same evaluation."""

    spec_label: ClassVar[str] = "early_stop (median)"

    pruner: Literal["median"] = "median"
    n_startup_trials: int = Field(
        default=5, ge=0, description="Trials that finish before any is stopped."
    )
    n_warmup_evals: int = Field(default=0, ge=0, description="Evaluations before a trial can stop.")
    interval_evals: int = Field(default=1, ge=1, description="Check every this many evaluations.")


PRUNERS: dict[str, type[StrictModel]] = {
    "asha": AshaStop,
    "hyperband": HyperbandStop,
    "median": MedianStop,
}


def _parse_early_stop(value: Any) -> Any:
    # Chosen by `pruner` by hand, so a wrong name gets the valid ones and the errors of
    # the chosen pruner come without the other pruners' noise.
    if isinstance(value, HyperbandStop | AshaStop | MedianStop):
        return value
    valid = ", ".join(PRUNERS)
    if not isinstance(value, dict):
        fail((), f"early_stop must be an object with a pruner ({valid}); got {value!r}", value)
    name = value.get("pruner")
    if not isinstance(name, str) or name not in PRUNERS:
        got = "no pruner" if name is None else f"pruner {name!r}"
        fail(("pruner",), f"early_stop needs a pruner among {valid} (got {got})", name)
    return PRUNERS[name].model_validate(value)


EarlyStop = Annotated[HyperbandStop | AshaStop | MedianStop, BeforeValidator(_parse_early_stop)]
