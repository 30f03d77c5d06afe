"""What a sweep must pass at submission, beyond its model: every check that needs the
whole sweep (its trials built, its tasks' metrics), so that a sweep that is accepted has
no trial that fails for its spec and ranks trials by a metric they log.

Called wherever a client's sweep arrives (the API, for native specs and W&B files alike);
not when a stored spec is decoded, which must keep decoding whatever the rules become.
"""

from __future__ import annotations

from services.specs.common import raise_problems
from services.specs.metric_check import metric_problems
from services.specs.space_check import entry_keys, sampled_space
from services.specs.sweep import SweepSpec

__all__ = ["check_sweep"]


def check_sweep(spec: SweepSpec, warnings: list[str]) -> None:
    """Raise ValidationError, located in the sweep spec, with every problem found; append
    to `warnings` what is allowed but likely unintended (each a sentence naming its key)."""
    problems = [
        *metric_problems(spec, warnings),
        *entry_keys(spec, warnings),
        *sampled_space(spec, warnings),
    ]
    raise_problems("sweep spec", problems)
