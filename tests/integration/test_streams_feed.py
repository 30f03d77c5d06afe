"""The live feed behind the SSE streams, polled directly over both store backends: every
point exactly once across polls and resumes, held-back last steps, bounded polls,
downsampling, status changes and findings."""

from __future__ import annotations

import math
from collections import Counter
from types import SimpleNamespace
from typing import Any

from services.analyzer import Diagnosis, Finding
from services.domain.records import Sweep, TrialStatus
from services.domain.submissions import NewSweep, NewTrial
from services.store import Store
from services.tracking.feed_cursor import StreamCursor
from services.tracking.feeds import Feed, FeedLimits, Poll, StreamEvent
from tests.support.streams import points


def make_sweep(store: Store, n: int = 2) -> tuple[int, Sweep, list[int]]:
    project = store.projects.create("p")
    sweep = store.sweeps.create(
        project.id,
        NewSweep("s", "grid", {}, "val_loss", "minimize", None, max_concurrent=n),
        [NewTrial(params={"i": i}, spec={"task": "digits"}, max_restarts=1) for i in range(n)],
    )
    trials = store.trials.list(project.id, sweep.id, limit=100, offset=0).items
    return project.id, sweep, [t.id for t in trials]


def start_all(store: Store, n: int) -> None:
    for _ in range(n):
        assert store.trial_states.claim_next("test", lambda t: True) is not None


def end(store: Store, trial_id: int, status: TrialStatus = TrialStatus.SUCCEEDED) -> None:
    assert store.trial_states.finish(trial_id, 0, status)


def write(
    store: Store, project_id: int, trial_id: int, steps: range, names: tuple[str, ...] = ("a", "b")
) -> None:
    points = [(n, s, float(s), None) for s in steps for n in names]
    store.metrics.write(project_id, trial_id, points)


def drain(feed: Feed, polls: int = 200) -> list[StreamEvent]:
    """Poll until a poll has nothing more to say (bounded)."""
    events: list[StreamEvent] = []
    for _ in range(polls):
        poll: Poll = feed.poll()
        events += poll.events
        if not poll.more:
            return events
    raise AssertionError("the feed kept reporting a backlog")


def resumed(store: Store, project_id: int, sweep_id: int, event_id: str, **kw: Any) -> Feed:
    cursor = StreamCursor.decode(event_id)
    return Feed(store, project_id, sweep_id=sweep_id, cursor=cursor, **kw)


def test_the_highest_step_waits_until_a_later_one_or_the_end(store: Store) -> None:
    project_id, sweep, (t1, _) = make_sweep(store)
    start_all(store, 2)
    feed = Feed(store, project_id, sweep_id=sweep.id)
    write(store, project_id, t1, range(0, 10), ("a",))
    write(store, project_id, t1, range(0, 9), ("b",))  # b of step 9 is in the next batch
    first = drain(feed)
    assert [e.type for e in first] == ["trial", "metrics", "trial"]  # t1, t2 started
    assert sorted(points(first)) == sorted((t1, n, s) for s in range(9) for n in "ab")
    write(store, project_id, t1, range(9, 10), ("b",))
    write(store, project_id, t1, range(10, 11))
    assert sorted(points(drain(feed))) == [(t1, "a", 9), (t1, "b", 9)]
    end(store, t1)
    tail = drain(feed)
    assert sorted(points(tail)) == [(t1, "a", 10), (t1, "b", 10)]
    assert tail[-1].type == "trial" and tail[-1].data["status"] == "succeeded"
    assert feed.cursor.done == {t1}


def test_end_comes_once_the_sweep_is_over_and_everything_was_sent(store: Store) -> None:
    project_id, sweep, (t1, t2) = make_sweep(store)
    start_all(store, 2)
    write(store, project_id, t1, range(5))
    end(store, t1)
    end(store, t2, TrialStatus.FAILED)
    feed = Feed(store, project_id, sweep_id=sweep.id)
    before = feed.poll()
    assert not before.ended  # both trials are over, the sweep not yet
    assert store.trial_states.finish_sweeps() == [sweep.id]
    after = feed.poll()
    assert after.ended and after.events[-1].type == "end"
    assert after.events[-1].data == {"sweep_id": sweep.id, "status": "finished"}
    statuses = {e.data["trial_id"]: e.data["status"] for e in before.events if e.type == "trial"}
    assert statuses == {t1: "succeeded", t2: "failed"}
    assert sorted(points(before.events)) == sorted((t1, n, s) for s in range(5) for n in "ab")


def test_resuming_from_any_event_gives_the_rest_exactly_once(store: Store) -> None:
    project_id, sweep, trials = make_sweep(store, 3)
    start_all(store, 3)
    for i, trial in enumerate(trials):
        write(store, project_id, trial, range(0, 40 + i))
    small = FeedLimits(series_points=16, poll_points=100)
    feed = Feed(store, project_id, sweep_id=sweep.id, limits=small)
    first = drain(feed)
    for trial in trials:
        end(store, trial)
    store.trial_states.finish_sweeps()
    expected = sorted((t, n, s) for i, t in enumerate(trials) for s in range(40 + i) for n in "ab")
    for cut in range(len(first)):  # a client that saw events up to `cut` and reconnected
        again = resumed(store, project_id, sweep.id, first[cut].id, limits=small)
        rest = drain(again)
        assert rest[-1].type == "end"
        union = points(first[: cut + 1]) + points(rest)
        assert sorted(union) == expected, cut
        assert max(Counter(union).values()) == 1


def test_a_poll_reads_a_bounded_number_of_points(store: Store) -> None:
    project_id, sweep, (t1, _) = make_sweep(store)
    start_all(store, 2)
    write(store, project_id, t1, range(1000))
    end(store, t1)
    feed = Feed(
        store, project_id, sweep_id=sweep.id, limits=FeedLimits(series_points=50, poll_points=100)
    )
    polls = []
    for _ in range(100):
        polls.append(feed.poll())
        if not polls[-1].more:
            break
    assert len(polls) >= 10
    assert all(len(points(p.events)) <= 100 for p in polls)
    got = [key for p in polls for key in points(p.events)]
    assert sorted(got) == sorted((t1, n, s) for s in range(1000) for n in "ab")


def test_max_points_downsamples_each_event_keeping_spikes(store: Store) -> None:
    project_id, sweep, (t1, _) = make_sweep(store)
    start_all(store, 2)
    values = [1.0] * 500
    values[250] = 99.0
    values[400] = math.inf
    store.metrics.write(project_id, t1, [("loss", s, v, None) for s, v in enumerate(values)])
    end(store, t1)
    limits = FeedLimits(max_points=20)
    events = drain(Feed(store, project_id, sweep_id=sweep.id, limits=limits))
    (metrics,) = [e for e in events if e.type == "metrics"]
    sent = {p["step"]: p["value"] for p in metrics.data["points"]}
    assert len(sent) <= 20 and metrics.data["downsampled"] is True
    assert metrics.data["total"] == 500
    assert sent[250] == 99.0 and sent[400] == "Infinity" and 0 in sent and 499 in sent


def test_status_changes_are_sent_as_they_happen(store: Store) -> None:
    project_id, sweep, (t1, t2) = make_sweep(store)
    feed = Feed(store, project_id, sweep_id=sweep.id)
    assert drain(feed) == []  # queued trials: nothing to say
    start_all(store, 2)
    started = drain(feed)
    assert [(e.data["trial_id"], e.data["status"]) for e in started] == [
        (t1, "running"),
        (t2, "running"),
    ]
    assert store.trial_states.requeue_or_fail(t1, 0, "worker lost") is TrialStatus.QUEUED
    (requeued,) = drain(feed)
    assert requeued.data == {
        "trial_id": t1,
        "number": 0,
        "status": "queued",
        "attempt": 1,
        "last_step": None,
        "stop_reason": None,
        "error": None,
    }
    assert drain(feed) == []


def test_findings_are_sent_when_they_change(store: Store) -> None:
    project_id, sweep, (t1, _) = make_sweep(store)
    start_all(store, 2)
    feed = Feed(store, project_id, sweep_id=sweep.id)
    drain(feed)

    def finding(kind: str, severity: str = "warning") -> Finding:
        return Finding(kind, severity, 0.8, 10, f"{kind} seen", {"x": 1.0}, "do less")  # type: ignore[arg-type]

    store.findings.upsert(project_id, t1, Diagnosis((finding("plateau"),), provisional=True))
    (event,) = drain(feed)
    assert event.type == "finding"
    assert event.data["trial_id"] == t1 and event.data["kind"] == "plateau"
    assert event.data["active"] is True
    store.findings.upsert(project_id, t1, Diagnosis((finding("divergence", "critical"),)))
    changed = drain(feed)
    assert {(e.data["kind"], e.data["active"]) for e in changed} == {
        ("divergence", True),
        ("plateau", False),
    }
    assert drain(resumed(store, project_id, sweep.id, changed[-1].id)) == []
    again = drain(resumed(store, project_id, sweep.id, event.id))
    assert [(e.data["kind"], e.data["active"]) for e in again] == [
        (e.data["kind"], e.data["active"]) for e in changed
    ]


def test_a_trial_feed_follows_that_trial_alone(store: Store) -> None:
    project_id, _, (t1, t2) = make_sweep(store)
    start_all(store, 2)
    write(store, project_id, t1, range(3))
    write(store, project_id, t2, range(3))
    end(store, t1)
    events = drain(Feed(store, project_id, trial_id=t1))
    assert {e.data["trial_id"] for e in events if e.type != "end"} == {t1}
    assert events[-1].type == "end" and events[-1].data == {"trial_id": t1, "status": "succeeded"}
    assert len(points(events)) == 6


class RacingMetrics:
    """The store's metrics, with a writer's batch landing between two series reads of one
    poll (each series is read in its own snapshot, as on a busy server)."""

    def __init__(self, store: Store, trial_id: int, batch: range) -> None:
        self._metrics, self._trial, self._batch = store.metrics, trial_id, batch
        self._store = store
        self.landed = False

    def names(self, project_id: int, trial_id: int) -> list[str]:
        return self._metrics.names(project_id, trial_id)

    def read(self, project_id: int, trial_id: int, names: list[str], **kw: Any) -> list[Any]:
        out = []
        for i, name in enumerate(names):
            if i == 1 and not self.landed:
                write(self._store, project_id, self._trial, self._batch)
                self.landed = True
            out += self._metrics.read(project_id, trial_id, [name], **kw)
        return out


def test_a_batch_landing_between_series_reads_loses_nothing(store: Store) -> None:
    project_id, sweep, (t1, _) = make_sweep(store)
    start_all(store, 2)
    write(store, project_id, t1, range(0, 10))
    racing = RacingMetrics(store, t1, range(10, 20))
    view = SimpleNamespace(
        sweeps=store.sweeps, progress=store.progress, findings=store.findings, metrics=racing
    )
    feed = Feed(view, project_id, sweep_id=sweep.id)  # type: ignore[arg-type]
    first = drain(feed)
    assert racing.landed
    end(store, t1)
    rest = drain(feed)
    union = points(first) + points(rest)
    assert sorted(union) == sorted((t1, n, s) for s in range(20) for n in "ab")
    assert max(Counter(union).values()) == 1
