"""How a running sweep's trials have ended so far: what its failure_policy decides from."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from services.domain.stored_specs import decode_failure_policy
from services.specs.failure_policy import FailurePolicy


@dataclass(frozen=True)
class FailureTally:
    sweep_id: int
    spec: dict[str, Any]  # the sweep's stored spec
    ended: int  # trials that succeeded, failed or were pruned (cancelled ones aside)
    failed: int
    failed_in_a_row: int  # how many of the latest to end, in a row, failed
    last_error: str | None  # the error of the latest failed trial

    @cached_property
    def policy(self) -> FailurePolicy | None:
        """The sweep's failure policy (None: turned off); StoredSpecError if it no longer
        decodes."""
        return decode_failure_policy(self.spec, sweep_id=self.sweep_id)
