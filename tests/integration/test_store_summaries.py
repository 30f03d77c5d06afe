"""SummaryRepository: per-trial figures of a sweep's series, on SQLite and PostgreSQL."""

from __future__ import annotations

import math

from services.domain.submissions import NewSweep, NewTrial
from services.store import Store


def make_sweep(store: Store, project: str, trials: int) -> tuple[int, int, list[int]]:
    found = store.projects.get_by_name(project)
    project_id = (found or store.projects.create(project)).id
    sweep = store.sweeps.create(
        project_id,
        NewSweep(
            name="s",
            method="grid",
            spec={},
            metric_name="val_loss",
            metric_goal="minimize",
            max_trials=None,
            max_concurrent=1,
        ),
        [NewTrial(params={}, spec={}, max_restarts=0) for _ in range(trials)],
    )
    page = store.trials.list(project_id, sweep.id, limit=10, offset=0)
    return project_id, sweep.id, [t.id for t in page.items]


def test_last_value_and_finite_extremes_per_trial(store: Store) -> None:
    project_id, sweep_id, (a, b, c) = make_sweep(store, "alpha", 3)
    # Written out of step order, with non-finite values inside and at the end.
    store.metrics.write(
        project_id,
        a,
        [
            ("val_loss", 20, 0.5, None),
            ("val_loss", 0, 2.0, None),
            ("val_loss", 10, math.inf, None),
            ("val_loss", 5, 0.25, None),
            ("train_loss", 3, 1.0, None),
        ],
    )
    store.metrics.write(
        project_id, b, [("val_loss", 0, 1.0, None), ("val_loss", 7, math.nan, None)]
    )
    store.metrics.write(project_id, c, [("val_loss", 0, -math.inf, None)])
    other_project, _, (other,) = make_sweep(store, "beta", 1)
    store.metrics.write(other_project, other, [("val_loss", 0, 9.0, None)])

    got = store.summaries.for_sweep(project_id, sweep_id, ["val_loss", "train_loss", "lr"])

    assert set(got) == {(a, "val_loss"), (a, "train_loss"), (b, "val_loss"), (c, "val_loss")}
    va = got[(a, "val_loss")]
    assert (va.points, va.last_step, va.last_value, va.low, va.high) == (4, 20, 0.5, 0.25, 2.0)
    vb = got[(b, "val_loss")]
    assert vb.last_step == 7 and math.isnan(vb.last_value) and (vb.low, vb.high) == (1.0, 1.0)
    vc = got[(c, "val_loss")]
    assert vc.last_value == -math.inf and vc.low is None and vc.high is None
    assert got[(a, "train_loss")].last_value == 1.0
    # The first point is the one at the smallest step, whatever order it was written in.
    assert (va.first_value, got[(a, "train_loss")].first_value) == (2.0, 1.0)
    assert vc.first_value == -math.inf


def test_another_projects_sweep_reads_as_empty(store: Store) -> None:
    project_id, sweep_id, (trial,) = make_sweep(store, "alpha", 1)
    store.metrics.write(project_id, trial, [("val_loss", 0, 1.0, None)])
    other = store.projects.create("beta")
    assert store.summaries.for_sweep(other.id, sweep_id, ["val_loss"]) == {}


def test_without_extremes_only_the_first_and_last_points_are_read(store: Store) -> None:
    project_id, sweep_id, (a, b) = make_sweep(store, "alpha", 2)
    store.metrics.write(project_id, a, [("train_loss", s, 1.0 / (s + 1), None) for s in range(50)])
    store.metrics.write(
        project_id, b, [("train_loss", 0, 1.0, None), ("train_loss", 9, math.inf, None)]
    )
    got = store.summaries.for_sweep(project_id, sweep_id, ["train_loss"], extremes=False)
    sa, sb = got[(a, "train_loss")], got[(b, "train_loss")]
    assert (sa.last_step, sa.last_value, sa.points, sa.low, sa.high) == (49, 0.02, None, None, None)
    assert (sb.last_step, sb.last_value) == (9, math.inf)
    assert (sa.first_value, sb.first_value) == (1.0, 1.0)
