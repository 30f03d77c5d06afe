"""The stream cursor: the compact event id a client resumes from."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.domain.errors import InvalidInput
from services.domain.finding_records import FindingCursor
from services.domain.records import TrialStatus
from services.tracking.feed_cursor import StreamCursor, TrialMark


def test_round_trip_keeps_every_part() -> None:
    cursor = StreamCursor(
        trials={12: TrialMark(340, TrialStatus.RUNNING), 15: TrialMark(-1, TrialStatus.QUEUED)},
        done={3, 4, 5, 6, 9, 11, 12_000},
        findings=FindingCursor(datetime(2026, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC), 77),
    )
    token = cursor.encode()
    assert token == "v1;f=1767323045678901-77;t=12:340:r,15:-1:q;d=3-6,9,11,12000"
    assert StreamCursor.decode(token) == cursor


def test_an_empty_cursor_is_the_version_alone() -> None:
    assert StreamCursor().encode() == "v1"
    assert StreamCursor.decode("v1") == StreamCursor()
    assert StreamCursor.decode(None) == StreamCursor() == StreamCursor.decode("")


def test_a_thousand_ended_trials_in_a_row_take_one_range() -> None:
    cursor = StreamCursor(done=set(range(1000, 2000)))
    assert cursor.encode() == "v1;d=1000-1999"


def test_finish_moves_a_trial_to_done() -> None:
    cursor = StreamCursor()
    cursor.mark(5).step = 10
    cursor.finish(5)
    assert cursor.trials == {} and cursor.done == {5}


@pytest.mark.parametrize(
    "token",
    [
        "v2;t=1:2:r",
        "garbage",
        "v1;t=1:2",
        "v1;t=1:2:x",
        "v1;t=0:2:r",
        "v1;t=1:-5:r",
        "v1;d=9-3",
        "v1;d=1-99999999",
        "v1;f=12",
        "v1;z=1",
        "v1;t=",
        "v1;t=a:b:r",
    ],
)
def test_ids_it_did_not_send_are_invalid_input_naming_the_source(token: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        StreamCursor.decode(token, "last_event_id")
    assert caught.value.field == "last_event_id"
    assert "not an event id of an lrlab stream" in caught.value.message
