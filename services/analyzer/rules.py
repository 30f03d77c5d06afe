"""The registry of analyzer rules: one rule per finding kind, keyed by its stable id.

A rule reads the run's curves (the series, cleaned and summarised once: `Curves`) and the
run's context, and returns one Finding of its kind or None. `healthy` and
`insufficient_data` have no rule of their own: `diagnose` reports them.
"""

from __future__ import annotations

from collections.abc import Callable

from services.analyzer.context import RunContext
from services.analyzer.curves import Curves
from services.analyzer.findings import KINDS, Finding
from services.analyzer.rules_capacity import underfitting
from services.analyzer.rules_generalization import overfitting
from services.analyzer.rules_gradients import exploding_gradients, vanishing_gradients
from services.analyzer.rules_oscillation import oscillation
from services.analyzer.rules_plateau import plateau
from services.analyzer.rules_progress import slow_convergence
from services.analyzer.rules_sharpness import divergence_or_sharpness

__all__ = ["RULES", "Rule"]

Rule = Callable[[Curves, RunContext], Finding | None]

RULES: dict[str, Rule] = {
    "divergence": divergence_or_sharpness,
    "oscillation": oscillation,
    "slow_convergence": slow_convergence,
    "plateau": plateau,
    "overfitting": overfitting,
    "underfitting": underfitting,
    "exploding_gradients": exploding_gradients,
    "vanishing_gradients": vanishing_gradients,
}

# Fail at import if the registry and the stable kind ids drift apart.
if set(RULES) | {"healthy", "insufficient_data"} != set(KINDS):
    raise RuntimeError(f"analyzer rules {sorted(RULES)} do not match KINDS {KINDS}")
