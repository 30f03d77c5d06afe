"""The store's contract, run over every backend (SQLite and PostgreSQL) via `store`."""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select, text, update

from services.analyzer import Diagnosis, Finding
from services.domain.errors import Conflict, NotFound
from services.domain.records import (
    ApiToken,
    Page,
    PointIn,
    Project,
    Series,
    Sweep,
    SweepStatus,
    Trial,
    TrialEvent,
    TrialStatus,
)
from services.domain.submissions import NewSweep, NewTrial
from services.store import Store
from services.store.tables import Base, MetricPointRow, TrialRow

NAN, INF = math.nan, math.inf


# -- helpers ------------------------------------------------------------------------------
def _new_sweep(name: str = "lr-sweep") -> NewSweep:
    return NewSweep(
        name=name,
        method="grid",
        spec={"lr": [0.1, 0.01]},
        metric_name="val_loss",
        metric_goal="minimize",
        max_trials=None,
        max_concurrent=2,
    )


def _new_trials(n: int, first_lr: float = 1.0) -> list[NewTrial]:
    return [
        NewTrial(params={"lr": first_lr / 10**i}, spec={"task": "mnist", "i": i}, max_restarts=1)
        for i in range(n)
    ]


def _sweep(store: Store, project_id: int, n_trials: int = 3, name: str = "lr-sweep") -> Sweep:
    return store.sweeps.create(project_id, _new_sweep(name), _new_trials(n_trials))


def _trials(
    store: Store, project_id: int, sweep_id: int, status: TrialStatus | None = None
) -> list[Trial]:
    return store.trials.list(project_id, sweep_id, limit=1000, offset=0, status=status).items


def _a_trial(store: Store, project_name: str = "metrics") -> Trial:
    project = store.projects.get_by_name(project_name) or store.projects.create(project_name)
    sweep = _sweep(store, project.id, n_trials=1, name=project_name)
    return _trials(store, project.id, sweep.id)[0]


def _set_trial_status(store: Store, trial_id: int, status: TrialStatus) -> None:
    """Stands in for the scheduler, which owns the queued -> running transition."""
    with store.db.session() as s:
        s.execute(update(TrialRow).where(TrialRow.id == trial_id).values(status=status.value))


def _one(store: Store, trial: Trial, name: str, **read_options: Any) -> Series:
    (series,) = store.metrics.read(trial.project_id, trial.id, [name], **read_options)
    return series


def _points(name: str, steps: Sequence[int], values: Sequence[float], at: float) -> list[PointIn]:
    return [(name, s, v, at + s) for s, v in zip(steps, values, strict=True)]


def _same(a: Sequence[float], b: Sequence[float]) -> None:
    """Element-wise equality where NaN equals NaN (and nothing else)."""
    np.testing.assert_array_equal(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))


def _snapshot(store: Store, trial: Trial) -> list[tuple[str, list[int], list[str], list[float]]]:
    # repr() makes NaN comparable with ==, and keeps every bit of a finite float.
    return [
        (s.name, s.steps, [repr(v) for v in s.values], s.times)
        for s in store.metrics.read(trial.project_id, trial.id)
    ]


def _stored_rows(store: Store, trial_id: int) -> int:
    with store.db.session() as s:
        q = select(func.count()).select_from(MetricPointRow)
        return s.scalar(q.where(MetricPointRow.trial_id == trial_id)) or 0


def _run_together(*jobs: Callable[[], object]) -> list[BaseException]:
    """Start every job at the same instant (a barrier, not a sleep); return their errors."""
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run(job: Callable[[], object]) -> None:
        try:
            barrier.wait()
            job()
        except BaseException as exc:  # collected and asserted on by the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    return errors


# -- projects and tokens ------------------------------------------------------------------
def test_create_a_project_and_find_it_by_name(store: Store) -> None:
    project = store.projects.create("alpha")
    assert project.name == "alpha"
    assert store.projects.get_by_name("alpha") == project
    assert store.projects.get_by_name("nope") is None


def test_duplicate_project_name_conflicts(store: Store) -> None:
    store.projects.create("alpha")
    with pytest.raises(Conflict) as exc:
        store.projects.create("alpha")
    assert exc.value.field == "name"
    assert [p.name for p in store.projects.list()] == ["alpha"]


def test_issued_token_authenticates(store: Store) -> None:
    project = store.projects.create("alpha")
    issued = store.projects.issue_token(project.id, "ci", is_admin=True)
    assert issued.secret.startswith("lrl_")
    assert len(issued.secret) > 32
    assert issued.secret.startswith(issued.token.prefix)
    found = store.projects.authenticate(issued.secret)
    assert found == (project, issued.token)
    assert found[1].is_admin is True


def test_tokens_are_unique(store: Store) -> None:
    project = store.projects.create("alpha")
    secrets = {store.projects.issue_token(project.id, f"t{i}").secret for i in range(5)}
    assert len(secrets) == 5


def test_secret_is_stored_only_as_a_hash(store: Store) -> None:
    project = store.projects.create("alpha")
    issued = store.projects.issue_token(project.id, "ci")
    with store.db.session() as s:
        rows = s.execute(text("SELECT * FROM api_tokens")).all()
    assert len(rows) == 1
    with store.db.session() as s:
        (token_hash,) = s.execute(text("SELECT token_hash FROM api_tokens")).one()
    assert token_hash != issued.secret
    assert len(token_hash) == 64 and int(token_hash, 16) >= 0
    stored = [str(v) for v in rows[0]]
    assert issued.secret not in stored
    assert not any(issued.secret in v for v in stored)
    assert not any(issued.secret[len("lrl_") :] in v for v in stored)


def test_unknown_secret_does_not_authenticate(store: Store) -> None:
    project = store.projects.create("alpha")
    issued = store.projects.issue_token(project.id, "ci")
    assert store.projects.authenticate("lrl_not-a-token") is None
    assert store.projects.authenticate("") is None
    assert store.projects.authenticate(issued.secret + "x") is None


def test_revoked_token_stops_working(store: Store) -> None:
    project = store.projects.create("alpha")
    keep = store.projects.issue_token(project.id, "keep")
    gone = store.projects.issue_token(project.id, "gone")
    store.projects.revoke_token(project.id, gone.token.id)
    assert store.projects.authenticate(gone.secret) is None
    assert store.projects.authenticate(keep.secret) is not None
    assert store.projects.list_tokens(project.id) == [keep.token]


def test_revoking_twice_is_not_found(store: Store) -> None:
    project = store.projects.create("alpha")
    issued = store.projects.issue_token(project.id, "ci")
    store.projects.revoke_token(project.id, issued.token.id)
    with pytest.raises(NotFound):
        store.projects.revoke_token(project.id, issued.token.id)


def test_cannot_revoke_another_projects_token(store: Store) -> None:
    alpha = store.projects.create("alpha")
    beta = store.projects.create("beta")
    issued = store.projects.issue_token(alpha.id, "ci")
    with pytest.raises(NotFound):
        store.projects.revoke_token(beta.id, issued.token.id)
    with pytest.raises(NotFound):
        store.projects.revoke_token(alpha.id, 987_654)
    assert store.projects.authenticate(issued.secret) is not None


def test_list_tokens_is_per_project(store: Store) -> None:
    alpha = store.projects.create("alpha")
    beta = store.projects.create("beta")
    a1 = store.projects.issue_token(alpha.id, "a1")
    a2 = store.projects.issue_token(alpha.id, "a2")
    store.projects.issue_token(beta.id, "b1")
    assert store.projects.list_tokens(alpha.id) == [a1.token, a2.token]


# -- sweeps and trials --------------------------------------------------------------------
def test_create_sweep_queues_numbered_trials(store: Store) -> None:
    project = store.projects.create("alpha")
    sweep = _sweep(store, project.id, n_trials=4)
    assert sweep.project_id == project.id
    assert sweep.status is SweepStatus.RUNNING
    assert sweep.trial_counts == {"queued": 4}
    assert sweep.spec == {"lr": [0.1, 0.01]}
    trials = _trials(store, project.id, sweep.id)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert {t.status for t in trials} == {TrialStatus.QUEUED}
    assert [t.params for t in trials] == [{"lr": 1.0}, {"lr": 0.1}, {"lr": 0.01}, {"lr": 0.001}]
    assert all(t.attempt == 0 and t.max_restarts == 1 and not t.cancel_requested for t in trials)


def test_each_new_trial_has_one_queued_event(store: Store) -> None:
    project = store.projects.create("alpha")
    sweep = _sweep(store, project.id, n_trials=3)
    for trial in _trials(store, project.id, sweep.id):
        events = store.trials.events(project.id, trial.id)
        assert [(e.trial_id, e.status) for e in events] == [(trial.id, TrialStatus.QUEUED)]


def test_get_sweep_is_scoped_by_project(store: Store) -> None:
    alpha = store.projects.create("alpha")
    beta = store.projects.create("beta")
    sweep = _sweep(store, alpha.id)
    assert store.sweeps.get(alpha.id, sweep.id) == sweep
    with pytest.raises(NotFound):
        store.sweeps.get(beta.id, sweep.id)
    with pytest.raises(NotFound):
        store.sweeps.get(alpha.id, 987_654)
    with pytest.raises(NotFound):
        store.trials.list(beta.id, sweep.id, limit=10, offset=0)


def test_list_sweeps_shows_only_own(store: Store) -> None:
    alpha = store.projects.create("alpha")
    beta = store.projects.create("beta")
    mine = _sweep(store, alpha.id, name="mine")
    _sweep(store, beta.id, name="theirs")
    page = store.sweeps.list(alpha.id, limit=10, offset=0)
    assert [s.id for s in page.items] == [mine.id]
    assert page.total == 1


def test_list_sweeps_paginates_newest_first(store: Store) -> None:
    project = store.projects.create("alpha")
    ids = [_sweep(store, project.id, n_trials=1, name=f"s{i}").id for i in range(5)]
    newest_first = ids[::-1]
    pages = [store.sweeps.list(project.id, limit=2, offset=o) for o in (0, 2, 4, 6)]
    assert [[s.id for s in p.items] for p in pages] == [
        newest_first[0:2],
        newest_first[2:4],
        newest_first[4:],
        [],
    ]
    assert {(p.total, p.limit) for p in pages} == {(5, 2)}
    assert [p.offset for p in pages] == [0, 2, 4, 6]
    assert all(s.trial_counts == {"queued": 1} for p in pages for s in p.items)


def test_list_sweeps_filters_by_status(store: Store) -> None:
    project = store.projects.create("alpha")
    running = _sweep(store, project.id, name="running")
    cancelled = _sweep(store, project.id, name="cancelled")
    store.sweeps.cancel(project.id, cancelled.id)
    by = {st: store.sweeps.list(project.id, limit=10, offset=0, status=st) for st in SweepStatus}
    assert [s.id for s in by[SweepStatus.RUNNING].items] == [running.id]
    assert [s.id for s in by[SweepStatus.CANCELLED].items] == [cancelled.id]
    assert by[SweepStatus.FINISHED].items == []
    assert by[SweepStatus.CANCELLED].total == 1


def test_list_trials_orders_by_number_and_filters(store: Store) -> None:
    project = store.projects.create("alpha")
    sweep = _sweep(store, project.id, n_trials=5)
    trials = _trials(store, project.id, sweep.id)
    _set_trial_status(store, trials[3].id, TrialStatus.RUNNING)
    store.trials.cancel(project.id, trials[1].id)

    page = store.trials.list(project.id, sweep.id, limit=2, offset=1)
    assert [t.number for t in page.items] == [1, 2]
    assert (page.total, page.limit, page.offset) == (5, 2, 1)
    queued = _trials(store, project.id, sweep.id, status=TrialStatus.QUEUED)
    assert [t.number for t in queued] == [0, 2, 4]
    assert [t.number for t in _trials(store, project.id, sweep.id, status=TrialStatus.RUNNING)] == [
        3
    ]
    assert store.sweeps.get(project.id, sweep.id).trial_counts == {
        "queued": 3,
        "running": 1,
        "cancelled": 1,
    }


def test_get_trial_is_scoped_by_project(store: Store) -> None:
    alpha = store.projects.create("alpha")
    beta = store.projects.create("beta")
    trial = _trials(store, alpha.id, _sweep(store, alpha.id).id)[0]
    assert store.trials.get(alpha.id, trial.id) == trial
    with pytest.raises(NotFound):
        store.trials.get(beta.id, trial.id)
    with pytest.raises(NotFound):
        store.trials.cancel(beta.id, trial.id)
    with pytest.raises(NotFound):
        store.trials.events(beta.id, trial.id)
    assert store.trials.get(alpha.id, trial.id).status is TrialStatus.QUEUED


def test_cancel_sweep_cancels_queued_trials(store: Store) -> None:
    project = store.projects.create("alpha")
    sweep = _sweep(store, project.id, n_trials=3)
    cancelled = store.sweeps.cancel(project.id, sweep.id)
    assert cancelled.status is SweepStatus.CANCELLED
    assert cancelled.finished_at is not None
    assert cancelled.trial_counts == {"cancelled": 3}
    assert store.sweeps.get(project.id, sweep.id) == cancelled
    for trial in _trials(store, project.id, sweep.id):
        assert trial.status is TrialStatus.CANCELLED
        assert trial.finished_at is not None
        events = store.trials.events(project.id, trial.id)
        assert [e.status for e in events] == [TrialStatus.QUEUED, TrialStatus.CANCELLED]


def test_cancel_sweep_asks_running_trials_to_stop(store: Store) -> None:
    project = store.projects.create("alpha")
    sweep = _sweep(store, project.id, n_trials=2)
    running, queued = _trials(store, project.id, sweep.id)
    _set_trial_status(store, running.id, TrialStatus.RUNNING)

    result = store.sweeps.cancel(project.id, sweep.id)
    assert result.status is SweepStatus.CANCELLED
    assert result.trial_counts == {"running": 1, "cancelled": 1}
    still = store.trials.get(project.id, running.id)
    assert still.status is TrialStatus.RUNNING
    assert still.cancel_requested is True
    assert still.finished_at is None
    assert store.trials.get(project.id, queued.id).status is TrialStatus.CANCELLED
    # Only the scheduler records the running trial's final state.
    assert [e.status for e in store.trials.events(project.id, running.id)] == [TrialStatus.QUEUED]


def test_cancel_trial(store: Store) -> None:
    project = store.projects.create("alpha")
    sweep = _sweep(store, project.id, n_trials=3)
    queued, running, _ = _trials(store, project.id, sweep.id)
    _set_trial_status(store, running.id, TrialStatus.RUNNING)

    done = store.trials.cancel(project.id, queued.id)
    assert done.status is TrialStatus.CANCELLED
    assert done.finished_at is not None
    asked = store.trials.cancel(project.id, running.id)
    assert (asked.status, asked.cancel_requested) == (TrialStatus.RUNNING, True)
    assert store.sweeps.get(project.id, sweep.id).status is SweepStatus.RUNNING
    assert store.sweeps.get(project.id, sweep.id).trial_counts == {
        "queued": 1,
        "running": 1,
        "cancelled": 1,
    }


def test_cancelling_a_cancelled_trial_changes_nothing(store: Store) -> None:
    project = store.projects.create("alpha")
    trial = _trials(store, project.id, _sweep(store, project.id, n_trials=1).id)[0]
    first = store.trials.cancel(project.id, trial.id)
    again = store.trials.cancel(project.id, trial.id)
    assert again == first
    assert len(store.trials.events(project.id, trial.id)) == 2


def _everything_the_store_returns(store: Store) -> list[object]:
    project = store.projects.create("alpha")
    issued = store.projects.issue_token(project.id, "ci")
    sweep = _sweep(store, project.id, n_trials=2)
    trial = _trials(store, project.id, sweep.id)[0]
    store.metrics.write(trial.project_id, trial.id, [("train_loss", 0, 1.0, None)])
    return [
        project,
        issued,
        issued.token,
        store.projects.authenticate(issued.secret),
        *store.projects.list_tokens(project.id),
        sweep,
        store.sweeps.get(project.id, sweep.id),
        store.sweeps.list(project.id, limit=10, offset=0),
        trial,
        store.trials.get(project.id, trial.id),
        *store.trials.events(project.id, trial.id),
        *store.metrics.read(trial.project_id, trial.id),
    ]


def _flatten(objs: list[object]) -> list[object]:
    out: list[object] = []
    for obj in objs:
        if isinstance(obj, tuple):
            out.extend(obj)
        elif isinstance(obj, Page):
            out.extend([obj, *obj.items])
        else:
            out.append(obj)
    return out


def test_returned_objects_are_frozen_domain_objects(store: Store) -> None:
    objs = _flatten(_everything_the_store_returns(store))
    kinds = {type(o) for o in objs}
    assert {Project, ApiToken, Sweep, Trial, TrialEvent, Series, Page} <= kinds
    for obj in objs:
        assert dataclasses.is_dataclass(obj), type(obj)
        assert not isinstance(obj, Base), f"{type(obj).__name__} is an ORM row"
        field = dataclasses.fields(obj)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, field, None)


def test_datetimes_are_timezone_aware(store: Store) -> None:
    objs = _flatten(_everything_the_store_returns(store))
    project = store.projects.list()[0]
    sweep = store.sweeps.list(project.id, limit=1, offset=0).items[0]
    store.sweeps.cancel(project.id, sweep.id)  # sets finished_at on the sweep and trials
    objs += [store.sweeps.get(project.id, sweep.id), *_trials(store, project.id, sweep.id)]
    seen = 0
    for obj in objs:
        for f in dataclasses.fields(obj):  # type: ignore[arg-type]
            value = getattr(obj, f.name)
            if isinstance(value, datetime):
                seen += 1
                assert value.tzinfo is not None, f"{type(obj).__name__}.{f.name} is naive"
                assert value.utcoffset() is not None
    assert seen >= 10


# -- metrics: basics -----------------------------------------------------------------------
def test_write_then_read_in_step_order(store: Store) -> None:
    trial = _a_trial(store)
    points = [("train_loss", s, 1.0 / (s + 1), 1000.0 + s) for s in (5, 0, 3, 1, 4, 2)]
    assert store.metrics.write(trial.project_id, trial.id, points) == 6
    series = _one(store, trial, "train_loss")
    assert series.steps == [0, 1, 2, 3, 4, 5]
    assert series.values == [1.0 / (s + 1) for s in range(6)]
    assert series.times == [1000.0 + s for s in range(6)]
    assert (series.total, series.downsampled, series.next_start) == (6, False, None)


def test_write_without_time_uses_now(store: Store) -> None:
    trial = _a_trial(store)
    t0 = time.time()
    store.metrics.write(trial.project_id, trial.id, [("lr", 0, 0.1, None)])
    t1 = time.time()
    (at,) = _one(store, trial, "lr").times
    assert t0 - 1 <= at <= t1 + 1


def test_non_finite_values_are_kept(store: Store) -> None:
    trial = _a_trial(store)
    values = [1.0, NAN, INF, -INF, 2.0, NAN]
    store.metrics.write(trial.project_id, trial.id, _points("train_loss", range(6), values, 0.0))
    got = _one(store, trial, "train_loss")
    assert got.steps == list(range(6))
    assert math.isnan(got.values[1]) and math.isnan(got.values[5])
    assert got.values[2] == INF and got.values[3] == -INF
    assert [got.values[0], got.values[4]] == [1.0, 2.0]


def test_resending_a_batch_changes_nothing(store: Store) -> None:
    trial = _a_trial(store)
    batch = _points(
        "train_loss", range(100), [NAN if s % 7 == 0 else s / 3 for s in range(100)], 1.0
    )
    batch += _points("lr", range(100), [INF if s == 50 else 0.1 for s in range(100)], 1.0)
    store.metrics.write(trial.project_id, trial.id, batch)
    before = _snapshot(store, trial)
    # Same values, later clock: a retry must not even move the recorded times.
    assert store.metrics.write(trial.project_id, trial.id, batch) == 200
    assert (
        store.metrics.write(trial.project_id, trial.id, [(n, s, v, None) for n, s, v, _ in batch])
        == 200
    )
    assert _snapshot(store, trial) == before
    assert _stored_rows(store, trial.id) == 200


def test_overlapping_batch_overwrites_and_keeps_the_rest(store: Store) -> None:
    trial = _a_trial(store)
    store.metrics.write(
        trial.project_id, trial.id, _points("val_loss", range(10), [1.0] * 10, 100.0)
    )
    # A resumed trial re-runs steps 6..9 and goes on to 12; steps 8 and 9 become NaN.
    resumed = [2.0, 2.0, NAN, NAN, 2.0, 2.0, 2.0]
    store.metrics.write(
        trial.project_id, trial.id, _points("val_loss", range(6, 13), resumed, 500.0)
    )
    got = _one(store, trial, "val_loss")
    assert got.steps == list(range(13))
    _same(got.values, [1.0] * 6 + resumed)
    assert got.times == [100.0 + s for s in range(6)] + [500.0 + s for s in range(6, 13)]


def test_nan_can_be_overwritten_by_a_number_and_back(store: Store) -> None:
    trial = _a_trial(store)
    store.metrics.write(trial.project_id, trial.id, [("x", 0, NAN, 1.0), ("x", 1, 1.0, 1.0)])
    store.metrics.write(trial.project_id, trial.id, [("x", 0, 3.0, 2.0), ("x", 1, NAN, 2.0)])
    got = _one(store, trial, "x")
    _same(got.values, [3.0, NAN])
    assert got.times == [2.0, 2.0]


def test_duplicate_step_within_a_batch_last_wins(store: Store) -> None:
    trial = _a_trial(store)
    batch = [
        ("lr", 0, 0.1, 1.0),
        ("lr", 1, 0.2, 1.0),
        ("lr", 0, 0.3, 2.0),
        ("lr", 0, NAN, 3.0),
        ("lr", 1, 0.5, 4.0),
    ]
    written = store.metrics.write(trial.project_id, trial.id, batch)
    assert written == 2
    got = _one(store, trial, "lr")
    assert got.steps == [0, 1]
    _same(got.values, [NAN, 0.5])
    assert got.times == [3.0, 4.0]


def test_duplicate_step_within_a_batch_that_also_overlaps_storage(store: Store) -> None:
    trial = _a_trial(store)
    store.metrics.write(trial.project_id, trial.id, [("lr", 0, 0.1, 1.0)])
    store.metrics.write(
        trial.project_id, trial.id, [("lr", 0, 0.2, 2.0), ("lr", 1, 0.3, 2.0), ("lr", 0, 0.4, 3.0)]
    )
    got = _one(store, trial, "lr")
    assert (got.steps, got.values, got.times) == ([0, 1], [0.4, 0.3], [3.0, 2.0])


def test_empty_batch_writes_nothing(store: Store) -> None:
    trial = _a_trial(store)
    assert store.metrics.write(trial.project_id, trial.id, []) == 0
    assert store.metrics.read(trial.project_id, trial.id) == []


def test_names_are_distinct_and_sorted(store: Store) -> None:
    trial = _a_trial(store)
    names = ["val_loss", "lr", "train_loss", "lr/1", "grad_norm", "val_accuracy"]
    store.metrics.write(
        trial.project_id, trial.id, [(n, s, 1.0, None) for s in range(3) for n in names]
    )
    assert store.metrics.names(trial.project_id, trial.id) == sorted(names)
    assert [s.name for s in store.metrics.read(trial.project_id, trial.id)] == sorted(names)


def test_read_filters_by_names(store: Store) -> None:
    trial = _a_trial(store)
    store.metrics.write(trial.project_id, trial.id, [(n, 0, 1.0, None) for n in ("a", "b", "c")])
    got = store.metrics.read(trial.project_id, trial.id, ["c", "a"])
    assert [s.name for s in got] == ["c", "a"]
    (missing,) = store.metrics.read(trial.project_id, trial.id, ["zzz"])
    assert (missing.steps, missing.values, missing.total) == ([], [], 0)


def test_read_step_range_is_inclusive(store: Store) -> None:
    trial = _a_trial(store)
    steps = list(range(0, 100, 10))
    store.metrics.write(
        trial.project_id, trial.id, _points("loss", steps, [float(s) for s in steps], 0.0)
    )
    assert _one(store, trial, "loss", start=20, end=50).steps == [20, 30, 40, 50]
    assert _one(store, trial, "loss", start=21, end=49).steps == [30, 40]
    assert _one(store, trial, "loss", start=90).steps == [90]
    assert _one(store, trial, "loss", end=0).steps == [0]
    assert _one(store, trial, "loss", start=91).steps == []
    assert _one(store, trial, "loss", start=50, end=40).steps == []


def test_empty_trial_reads_as_empty(store: Store) -> None:
    trial = _a_trial(store)
    assert store.metrics.names(trial.project_id, trial.id) == []
    assert store.metrics.read(trial.project_id, trial.id) == []
    assert store.metrics.read(trial.project_id, trial.id, max_points=100) == []
    with pytest.raises(NotFound):  # an unknown trial is not found, not empty
        store.metrics.read(trial.project_id, 987_654)


# -- metrics: raw pages and downsampling ---------------------------------------------------
def test_raw_limit_pages_without_gaps_or_duplicates(store: Store) -> None:
    trial = _a_trial(store)
    steps = [s * 3 for s in range(250)]  # gaps between steps, so next_start is a real step
    store.metrics.write(
        trial.project_id, trial.id, _points("loss", steps, [s / 7 for s in steps], 0.0)
    )

    first = _one(store, trial, "loss", limit=100)
    assert first.steps == steps[:100]
    assert first.next_start == steps[100]
    assert first.total == 100  # raw reads count what they return (api/schemas.py SeriesOut)

    seen, values, start, reads = [], [], None, 0
    while True:
        page = _one(store, trial, "loss", start=start, limit=100)
        seen += page.steps
        values += page.values
        reads += 1
        if page.next_start is None:
            break
        start = page.next_start
    assert reads == 3
    assert seen == steps
    assert values == [s / 7 for s in steps]


def test_raw_limit_exactly_at_the_end_has_no_next_start(store: Store) -> None:
    trial = _a_trial(store)
    store.metrics.write(trial.project_id, trial.id, _points("loss", range(100), [1.0] * 100, 0.0))
    page = _one(store, trial, "loss", limit=100)
    assert (len(page.steps), page.next_start) == (100, None)
    page = _one(store, trial, "loss", limit=99)
    assert (len(page.steps), page.next_start) == (99, 99)


def _diverging_series(n: int, spike: int, nan_from: int, nan_to: int) -> list[float]:
    values = [2.0 * math.exp(-s / 5000) + 0.001 * math.sin(s) for s in range(n)]
    values[spike] = 1e6
    for s in range(nan_from, nan_to):
        values[s] = NAN
    return values


def test_downsampled_read_keeps_what_matters(store: Store) -> None:
    trial = _a_trial(store)
    n, spike, nan_from = 20_000, 7_321, 15_000
    values = _diverging_series(n, spike, nan_from, 15_500)
    store.metrics.write(trial.project_id, trial.id, _points("train_loss", range(n), values, 0.0))

    got = _one(store, trial, "train_loss", max_points=500)
    assert len(got.steps) <= 500
    assert got.total == n
    assert got.downsampled is True
    assert got.next_start is None
    assert got.steps == sorted(set(got.steps))
    assert got.steps[0] == 0 and got.steps[-1] == n - 1
    assert spike in got.steps
    assert nan_from in got.steps
    assert math.isnan(got.values[got.steps.index(nan_from)])
    for step, value, at in zip(got.steps, got.values, got.times, strict=True):
        _same([value], [values[step]])
        assert at == float(step)


def test_downsampled_read_respects_the_step_range(store: Store) -> None:
    trial = _a_trial(store)
    store.metrics.write(
        trial.project_id, trial.id, _points("loss", range(5_000), [1.0] * 5_000, 0.0)
    )
    got = _one(store, trial, "loss", start=1_000, end=2_999, max_points=100)
    assert got.total == 2_000
    assert len(got.steps) <= 100
    assert (got.steps[0], got.steps[-1]) == (1_000, 2_999)


def test_downsampled_read_of_a_short_series_is_whole(store: Store) -> None:
    trial = _a_trial(store)
    store.metrics.write(
        trial.project_id, trial.id, _points("loss", range(50), [float(s) for s in range(50)], 0.0)
    )
    got = _one(store, trial, "loss", max_points=100)
    assert (got.steps, got.total, got.downsampled) == (list(range(50)), 50, False)


def test_shapes_read_matches_the_downsampled_read_without_times(store: Store) -> None:
    trial = _a_trial(store)
    n = 20_000
    values = _diverging_series(n, 7_321, 15_000, 15_500)
    store.metrics.write(trial.project_id, trial.id, _points("train_loss", range(n), values, 0.0))
    store.metrics.write(
        trial.project_id, trial.id, _points("val_loss", range(0, n, 50), [0.5] * (n // 50), 0.0)
    )
    store.metrics.write(trial.project_id, trial.id, _points("other", range(10), [1.0] * 10, 0.0))

    shapes = store.metrics.read_shapes(
        trial.project_id, trial.id, ["val_loss", "missing", "train_loss"], 500
    )
    # The names asked for that exist, in the order asked; never the others.
    assert list(shapes) == ["val_loss", "train_loss"]
    for full in store.metrics.read(
        trial.project_id, trial.id, ["val_loss", "train_loss"], max_points=500
    ):
        steps, values = shapes[full.name]
        assert steps.dtype == np.int64 and values.dtype == np.float64
        assert steps.tolist() == full.steps
        _same(values.tolist(), full.values)
    assert len(shapes["train_loss"][0]) <= 500 and 15_000 in shapes["train_loss"][0]
    assert store.metrics.read_shapes(trial.project_id, trial.id, ["missing"], 500) == {}


def test_shapes_read_of_points_written_out_of_order(store: Store) -> None:
    # A resumed trial writes later steps first and rewrites some: the read is by step.
    trial = _a_trial(store)
    store.metrics.write(
        trial.project_id, trial.id, _points("train_loss", range(500, 1_000), [2.0] * 500, 0.0)
    )
    store.metrics.write(
        trial.project_id, trial.id, _points("train_loss", range(0, 600), [1.0] * 600, 0.0)
    )
    steps, values = store.metrics.read_shapes(trial.project_id, trial.id, ["train_loss"], 10_000)[
        "train_loss"
    ]
    assert steps.tolist() == list(range(1_000))
    assert values.tolist() == [1.0] * 600 + [2.0] * 400


def test_names_with_a_prefix_are_only_those_that_start_with_it(store: Store) -> None:
    trial, other = _a_trial(store, "a"), _a_trial(store, "b")
    layers = [f"grad_norm/{i:02d}.layers.{i}" for i in range(5)]
    near = ["grad_norm", "grad_normal", "grad_norm_x", "grad.norm/00.x", "lr", "zzz"]
    store.metrics.write(
        trial.project_id, trial.id, [(n, s, 1.0, None) for n in layers + near for s in range(3)]
    )
    store.metrics.write(other.project_id, other.id, [("grad_norm/00.elsewhere", 0, 1.0, None)])
    assert store.metrics.names_with_prefix(trial.project_id, trial.id, "grad_norm/", 64) == layers
    # LIKE's wildcards in a prefix are plain characters.
    assert store.metrics.names_with_prefix(trial.project_id, trial.id, "grad_norm_", 64) == [
        "grad_norm_x"
    ]
    assert store.metrics.names_with_prefix(trial.project_id, trial.id, "nothing/", 64) == []
    with pytest.raises(NotFound):
        store.metrics.names_with_prefix(trial.project_id, 987_654, "grad_norm/", 64)


def test_names_with_a_prefix_past_the_limit_are_spread_from_first_to_last(store: Store) -> None:
    trial = _a_trial(store)
    layers = [f"grad_norm/{i:03d}.block" for i in range(200)]
    store.metrics.write(trial.project_id, trial.id, [(n, 0, 1.0, None) for n in layers])
    picked = store.metrics.names_with_prefix(trial.project_id, trial.id, "grad_norm/", 64)
    assert len(picked) == 64 and picked == sorted(set(picked))
    assert (picked[0], picked[-1]) == (layers[0], layers[-1])
    gaps = np.diff([layers.index(n) for n in picked])
    assert gaps.min() >= 3 and gaps.max() <= 4  # evenly spaced over the 200


# -- metrics: volume and isolation ---------------------------------------------------------
def test_large_batch_lands_completely(store: Store) -> None:
    trial = _a_trial(store)
    n = 50_000
    batch = [("train_loss", s, s * 0.5, float(s)) for s in range(n)]
    assert store.metrics.write(trial.project_id, trial.id, batch) == n
    got = _one(store, trial, "train_loss")
    assert got.steps == list(range(n))
    assert got.values == [s * 0.5 for s in range(n)]
    assert got.total == n
    assert _stored_rows(store, trial.id) == n


def test_points_of_two_trials_do_not_mix(store: Store) -> None:
    a, b = _a_trial(store, "a"), _a_trial(store, "b")
    store.metrics.write(a.project_id, a.id, _points("loss", range(10), [1.0] * 10, 0.0))
    store.metrics.write(b.project_id, b.id, _points("loss", range(5, 15), [2.0] * 10, 0.0))
    store.metrics.write(b.project_id, b.id, _points("acc", range(3), [0.5] * 3, 0.0))
    assert store.metrics.names(a.project_id, a.id) == ["loss"]
    assert store.metrics.names(b.project_id, b.id) == ["acc", "loss"]
    got_a, got_b = _one(store, a, "loss"), _one(store, b, "loss")
    assert (got_a.steps, set(got_a.values)) == (list(range(10)), {1.0})
    assert (got_b.steps, set(got_b.values)) == (list(range(5, 15)), {2.0})


# -- project scoping: another project's trial or sweep is not found ------------------------
def _mine_and_a_stranger(store: Store) -> tuple[Trial, int]:
    """A trial with points, and the id of another project (one with a trial of its own)."""
    mine = _a_trial(store, "mine")
    store.metrics.write(mine.project_id, mine.id, _points("loss", range(100), [1.0] * 100, 0.0))
    stranger = _a_trial(store, "stranger").project_id
    return mine, stranger


def test_metrics_of_another_projects_trial_are_not_found(store: Store) -> None:
    mine, stranger = _mine_and_a_stranger(store)
    kept = _snapshot(store, mine)
    calls: list[Callable[[], object]] = [
        lambda: store.metrics.write(stranger, mine.id, [("loss", 500, 9.0, None)]),
        lambda: store.metrics.write(stranger, mine.id, []),
        lambda: store.metrics.read(stranger, mine.id),
        lambda: store.metrics.read(stranger, mine.id, ["loss"], max_points=10),
        lambda: store.metrics.names(stranger, mine.id),
        lambda: store.metrics.read_shapes(stranger, mine.id, ["loss"], 10),
        lambda: store.metrics.names_with_prefix(stranger, mine.id, "lo", 64),
    ]
    for call in calls:
        with pytest.raises(NotFound):
            call()
    assert _snapshot(store, mine) == kept
    assert _stored_rows(store, mine.id) == 100


def test_findings_of_another_projects_trial_are_not_found(store: Store) -> None:
    mine, stranger = _mine_and_a_stranger(store)
    healthy = Finding("healthy", "info", 1.0, None, "fine", {}, "carry on")
    analysis = {"provisional": False, "findings": [healthy.to_dict()]}
    with pytest.raises(NotFound):
        store.findings.upsert(stranger, mine.id, Diagnosis((healthy,)), cache=(99, analysis))
    assert store.findings.for_trial(mine.project_id, mine.id).items == []
    assert store.analyses.get(mine.project_id, mine.id).analysis is None  # type: ignore[union-attr]
    store.findings.upsert(mine.project_id, mine.id, Diagnosis((healthy,)))
    assert [f.kind for f in store.findings.for_trial(mine.project_id, mine.id).items] == ["healthy"]


def test_progress_of_another_projects_sweep_or_trial_is_not_found(store: Store) -> None:
    mine, stranger = _mine_and_a_stranger(store)
    with pytest.raises(NotFound):
        store.progress.of_sweep(stranger, mine.sweep_id)
    with pytest.raises(NotFound):
        store.progress.of_trial(stranger, mine.id)
    with pytest.raises(NotFound):
        store.progress.top_step(stranger, mine.id, ["loss"])
    assert [t.id for t in store.progress.of_sweep(mine.project_id, mine.sweep_id)] == [mine.id]
    assert [t.id for t in store.progress.of_trial(mine.project_id, mine.id)] == [mine.id]
    assert store.progress.top_step(mine.project_id, mine.id, ["loss"]) == 99


# -- metrics: identical across backends ----------------------------------------------------
CROSS_BACKEND_BATCH: list[PointIn] = [
    ("train_loss", 0, 2.302585092994046, 1_700_000_000.123456),
    ("train_loss", 1, 1 / 3, 1_700_000_000.5),
    ("train_loss", 2, NAN, 1_700_000_001.0),
    ("train_loss", 3, INF, 1_700_000_001.25),
    ("train_loss", 4, -INF, 1_700_000_002.0),
    ("train_loss", 2**53 + 1, 5e-324, 1_700_000_003.0),  # int8 steps, subnormal values
    ("lr", 0, 0.1, 0.0),
    ("lr", 10**12, 1.7976931348623157e308, 1e-9),
    ("lr", 7, -2.5e-308, 123.456),
    ("val_accuracy", 100, 0.98765432109876543, 42.0),
]
CROSS_BACKEND_EXPECTED = {
    "lr": ([0, 7, 10**12], [0.1, -2.5e-308, 1.7976931348623157e308], [0.0, 123.456, 1e-9]),
    "train_loss": (
        [0, 1, 2, 3, 4, 2**53 + 1],
        [2.302585092994046, 1 / 3, NAN, INF, -INF, 5e-324],
        [
            1_700_000_000.123456,
            1_700_000_000.5,
            1_700_000_001.0,
            1_700_000_001.25,
            1_700_000_002.0,
            1_700_000_003.0,
        ],
    ),
    "val_accuracy": ([100], [0.98765432109876543], [42.0]),
}


def test_reads_are_bit_identical_to_what_was_written(store: Store) -> None:
    trial = _a_trial(store)
    store.metrics.write(trial.project_id, trial.id, CROSS_BACKEND_BATCH)
    got = store.metrics.read(trial.project_id, trial.id)
    assert [s.name for s in got] == sorted(CROSS_BACKEND_EXPECTED)
    for series in got:
        steps, values, times = CROSS_BACKEND_EXPECTED[series.name]
        assert series.steps == steps
        assert all(isinstance(s, int) for s in series.steps)
        assert [repr(v) for v in series.values] == [repr(v) for v in values]
        assert series.times == times
        assert series.total == len(steps)


# -- concurrency ---------------------------------------------------------------------------
def _assert_every_step_once(store: Store, trial: Trial, names: list[str], steps: range) -> None:
    for name in names:
        got = _one(store, trial, name)
        assert got.steps == list(steps), name
    assert _stored_rows(store, trial.id) == len(names) * len(steps)


def test_concurrent_overlapping_writes_both_succeed(store: Store) -> None:
    trial = _a_trial(store)
    names = ["train_loss", "lr"]
    first = [(n, s, 1.0, None) for s in range(0, 6_000) for n in names]
    second = [(n, s, 2.0, None) for s in range(3_000, 9_000) for n in names]
    errors = _run_together(
        lambda: store.metrics.write(trial.project_id, trial.id, first),
        lambda: store.metrics.write(trial.project_id, trial.id, second),
    )
    assert errors == []
    _assert_every_step_once(store, trial, names, range(9_000))
    loss = _one(store, trial, "train_loss")
    assert set(loss.values[:3_000]) == {1.0}
    assert set(loss.values[6_000:]) == {2.0}
    assert set(loss.values[3_000:6_000]) <= {1.0, 2.0}


def test_concurrent_retries_of_the_same_batch(store: Store) -> None:
    # At-least-once delivery: a worker's retry can race the original send.
    trial = _a_trial(store)
    batch = [("train_loss", s, s / 10, float(s)) for s in range(5_000)]
    errors = _run_together(*[lambda: store.metrics.write(trial.project_id, trial.id, batch)] * 4)
    assert errors == []
    _assert_every_step_once(store, trial, ["train_loss"], range(5_000))
    assert _one(store, trial, "train_loss").values == [s / 10 for s in range(5_000)]


def test_concurrent_overlapping_writes_in_different_orders(store: Store) -> None:
    # Two writers that lay out the same keys differently (step-major vs name-major, one
    # of them reversed) must not deadlock each other: both batches must land.
    names = ["grad_norm", "lr", "train_loss"]
    for round_ in range(10):
        trial = _a_trial(store, f"order-{round_}")
        step_major = [(n, s, 1.0, None) for s in range(0, 3_000) for n in names]
        name_major = [(n, s, 2.0, None) for n in reversed(names) for s in range(3_999, 999, -1)]
        errors = _run_together(
            lambda t=trial, b=step_major: store.metrics.write(t.project_id, t.id, b),
            lambda t=trial, b=name_major: store.metrics.write(t.project_id, t.id, b),
        )
        assert errors == [], f"round {round_}: {errors!r}"
        _assert_every_step_once(store, trial, names, range(4_000))


def test_analysis_cache_round_trip_and_currency(store: Store) -> None:
    project = store.projects.create("cache")
    sweep = _sweep(store, project.id, n_trials=2)
    first, second = _trials(store, project.id, sweep.id)
    cached = store.analyses.for_sweep(project.id, sweep.id)
    assert [c.trial_id for c in cached] == [first.id, second.id]
    assert all(c.analysis is None and not c.is_current for c in cached)

    # The cache is written with the findings, in one transaction
    # (services.analysis.trial_analysis.record).
    nothing = Diagnosis((), provisional=False)
    store.findings.upsert(
        first.project_id, first.id, nothing, cache=(None, {"provisional": False, "findings": []})
    )
    got = store.analyses.get(project.id, first.id)
    assert got is not None and got.analysis == {"provisional": False, "findings": []}
    assert not got.is_current  # the trial is still queued: it will change
    assert store.analyses.get(project.id + 999, first.id) is None  # other project

    _set_trial_status(store, first.id, TrialStatus.SUCCEEDED)
    assert store.analyses.get(project.id, first.id).is_current  # type: ignore[union-attr]
    store.findings.upsert(
        first.project_id, first.id, nothing, cache=(None, {"provisional": True, "findings": []})
    )
    assert not store.analyses.get(project.id, first.id).is_current  # type: ignore[union-attr]
