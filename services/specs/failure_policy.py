"""When a sweep whose trials keep failing stops itself.

A failed trial is one whose code raised (or that could not be built from its params, or
whose worker was lost past its restarts); a pruned or diverged trial is a result, not a
failure, and a cancelled one ended by someone's choice. Either limit ends the sweep
`failed` with a reason that quotes the last error; its queued trials are cancelled and a
random or bayes sweep asks for no more. Running trials finish on their own.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from services.specs.common import StrictModel

__all__ = ["FailurePolicy"]


class FailurePolicy(StrictModel):
    """On by default; `failure_policy: null` in a sweep spec turns it off, and a limit set
    to null turns off that limit alone."""

    spec_label: ClassVar[str] = "failure_policy"

    max_consecutive_failures: int | None = Field(
        default=5,
        ge=1,
        le=2**31 - 1,
        description="Stop once this many trials in a row (in the order they ended) failed.",
    )
    max_failure_rate: float | None = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="Stop once more than this share of the ended trials failed ...",
    )
    min_finished: int = Field(
        default=10,
        ge=1,
        le=2**31 - 1,
        description="... counted only from this many ended trials (succeeded, failed or "
        "pruned) on.",
    )
