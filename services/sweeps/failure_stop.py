"""Sweeps whose trials keep failing stop themselves (their spec's `failure_policy`).

The scheduler calls this after trials failed: each running sweep among theirs is tallied
and, when a limit is passed, ended `failed` with the reason in words and the last error,
so that a sweep whose task cannot run ends in seconds instead of failing 10,000 trials.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from services.domain.failure_tally import FailureTally
from services.domain.records import SweepStatus
from services.domain.stored_specs import StoredSpecError
from services.specs.failure_policy import FailurePolicy
from services.store import Store
from services.store.sweep_failures_repo import STOPPED_WITH_SWEEP

__all__ = ["failure_reason", "stop_failing_sweeps"]

log = logging.getLogger("lrlab.sweeps")

# The last error is quoted, but a traceback-sized one would drown the reason.
_ERROR_CHARS = 500


def failure_reason(policy: FailurePolicy, tally: FailureTally) -> str | None:
    """Why the sweep stops now, or None while it may go on."""
    in_a_row = policy.max_consecutive_failures
    rate = policy.max_failure_rate
    if in_a_row is not None and tally.failed_in_a_row >= in_a_row:
        n = tally.failed_in_a_row
        why = (
            f"the first {n} trials all failed"
            if n == tally.ended
            else f"the last {n} trials to end all failed"
        )
    elif (
        rate is not None
        and tally.ended >= policy.min_finished
        and tally.failed > rate * tally.ended
    ):
        why = (
            f"{tally.failed} of its {tally.ended} ended trials failed, more than "
            f"failure_policy.max_failure_rate ({rate:g})"
        )
    else:
        return None
    error = tally.last_error or "none recorded"
    if len(error) > _ERROR_CHARS:
        error = error[: _ERROR_CHARS - 3] + "..."
    return f"stopped: {why}; last error: {error}"


def stop_failing_sweeps(store: Store, failed_trial_ids: Collection[int]) -> list[int]:
    """Stop the running sweeps of these (just failed) trials whose failure policy says so;
    the ids of the sweeps stopped."""
    stopped = []
    for tally in store.sweep_failures.tallies(failed_trial_ids):
        try:
            policy = tally.policy
        except StoredSpecError as exc:  # one broken sweep must not stop the others' checks
            log.error("%s", exc)
            continue
        reason = None if policy is None else failure_reason(policy, tally)
        stopped_now = reason is not None and store.trial_states.end_sweep(
            tally.sweep_id, reason, status=SweepStatus.FAILED, trial_reason=STOPPED_WITH_SWEEP
        )
        if stopped_now:
            log.warning("sweep %s %s", tally.sweep_id, reason)
            stopped.append(tally.sweep_id)
    return stopped
