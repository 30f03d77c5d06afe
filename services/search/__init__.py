"""Search-space adapters: drawing parameters (directly or through Optuna's samplers) and the
rungs early stopping compares trials at. Pure functions over specs: no store, no HTTP."""

from services.search.distributions import EPS, OptunaParam, Param, quantize, sample, to_optuna
from services.search.hyperband import hyperband_rungs

__all__ = ["EPS", "OptunaParam", "Param", "hyperband_rungs", "quantize", "sample", "to_optuna"]
