"""Options of method bayes: which Optuna sampler models the finished trials.

- `tpe` (default): Optuna's TPESampler with constant_liar, so trials running at once are
  not asked for the same point twice.
- `gp`: Optuna's GPSampler, a Gaussian process with expected improvement (what W&B's bayes
  method uses); best on a few continuous parameters. It fits with torch, so it costs the
  scheduler process torch's import the first time a gp sweep asks.

Both draw `n_startup_trials` trials at random before their model is used.
"""

from __future__ import annotations

from typing import ClassVar, Literal, get_args

from pydantic import Field

from services.specs.common import StrictModel

__all__ = ["BAYES_SAMPLERS", "BayesOptions", "BayesSamplerName"]

BayesSamplerName = Literal["tpe", "gp"]
BAYES_SAMPLERS: tuple[str, ...] = get_args(BayesSamplerName)


class BayesOptions(StrictModel):
    """The model behind method bayes."""

    spec_label: ClassVar[str] = "bayes"

    sampler: BayesSamplerName = "tpe"
    n_startup_trials: int = Field(
        default=10, ge=0, le=10_000, description="Random trials before the model is used."
    )
