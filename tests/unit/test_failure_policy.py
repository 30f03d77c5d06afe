"""A sweep's failure_policy: its defaults, turning it off, and when it says stop and why."""

from __future__ import annotations

import pytest

from services.domain.failure_tally import FailureTally
from services.specs import SweepSpec
from services.specs.failure_policy import FailurePolicy
from services.sweeps.failure_stop import failure_reason
from tests.support.specs import assert_rejected, trial


def tally(
    ended: int, failed: int, in_a_row: int, error: str | None = "ValueError: boom"
) -> FailureTally:
    return FailureTally(
        sweep_id=1,
        spec={"base": trial()},
        ended=ended,
        failed=failed,
        failed_in_a_row=in_a_row,
        last_error=error,
    )


def test_on_by_default_and_null_turns_it_off() -> None:
    spec = SweepSpec.model_validate({"base": trial()})
    assert spec.failure_policy == FailurePolicy(
        max_consecutive_failures=5, max_failure_rate=0.5, min_finished=10
    )
    assert (
        SweepSpec.model_validate({"base": trial(), "failure_policy": None}).failure_policy is None
    )
    # A spec stored before the policy existed has none: it gets the defaults.
    assert tally(5, 5, 5).policy == FailurePolicy()
    off = FailureTally(1, {"failure_policy": None}, 5, 5, 5, None)
    assert off.policy is None


@pytest.mark.parametrize(
    ("policy", "fragments"),
    [
        ({"max_failure_rate": 1.5}, ("failure_policy.max_failure_rate", "less than 1")),
        ({"max_failure_rate": 0}, ("failure_policy.max_failure_rate", "greater than 0")),
        ({"max_consecutive_failures": 0}, ("failure_policy.max_consecutive_failures",)),
        ({"min_finished": -1}, ("failure_policy.min_finished",)),
        ({"max_failures": 3}, ("unknown key 'max_failures'", "max_consecutive_failures")),
    ],
)
def test_bad_limits_name_the_field(policy: dict[str, object], fragments: tuple[str, ...]) -> None:
    assert_rejected(SweepSpec, {"base": trial(), "failure_policy": policy}, *fragments)


def test_the_first_trials_all_failing_stop_the_sweep_with_the_last_error() -> None:
    policy = FailurePolicy()
    assert failure_reason(policy, tally(4, 4, 4)) is None
    assert failure_reason(policy, tally(5, 5, 5)) == (
        "stopped: the first 5 trials all failed; last error: ValueError: boom"
    )


def test_failures_in_a_row_after_results_say_the_last_ones_failed() -> None:
    reason = failure_reason(FailurePolicy(), tally(8, 5, 5))
    assert reason is not None and reason.startswith("stopped: the last 5 trials to end all failed")


def test_the_failure_rate_counts_only_from_min_finished_on() -> None:
    policy = FailurePolicy(max_consecutive_failures=None, max_failure_rate=0.5, min_finished=10)
    assert failure_reason(policy, tally(9, 8, 2)) is None  # too few ended to judge a rate
    assert failure_reason(policy, tally(10, 5, 2)) is None  # half is not more than half
    reason = failure_reason(policy, tally(10, 6, 2))
    assert reason == (
        "stopped: 6 of its 10 ended trials failed, more than failure_policy.max_failure_rate "
        "(0.5); last error: ValueError: boom"
    )


def test_each_limit_can_be_turned_off_alone() -> None:
    no_rate = FailurePolicy(max_failure_rate=None)
    assert failure_reason(no_rate, tally(100, 90, 4)) is None
    no_run = FailurePolicy(max_consecutive_failures=None)
    assert failure_reason(no_run, tally(5, 5, 5)) is None


def test_a_long_error_is_cut_and_a_missing_one_said() -> None:
    reason = failure_reason(FailurePolicy(), tally(5, 5, 5, error="x" * 5000))
    assert reason is not None and len(reason) < 600 and reason.endswith("...")
    missing = failure_reason(FailurePolicy(), tally(5, 5, 5, error=None))
    assert missing is not None and missing.endswith("last error: none recorded")
