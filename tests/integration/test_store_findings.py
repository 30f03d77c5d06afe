"""FindingRepository over every backend (SQLite and PostgreSQL) via `store`."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from services.analyzer import Diagnosis, Finding
from services.analyzer.findings import Severity
from services.domain.errors import NotFound
from services.domain.finding_records import FindingCursor
from services.domain.records import Trial
from services.domain.submissions import NewSweep, NewTrial
from services.store import Store
from services.store.findings_repo import FindingFilter


def _trials(store: Store, project: str = "p", n: int = 2) -> list[Trial]:
    found = store.projects.get_by_name(project)
    p = found or store.projects.create(project)
    sweep = store.sweeps.create(
        p.id,
        NewSweep("s", "grid", {}, "val_loss", "minimize", None, 2),
        [NewTrial(params={}, spec={}, max_restarts=0) for _ in range(n)],
    )
    return store.trials.list(p.id, sweep.id, limit=10, offset=0).items


def _finding(
    kind: str,
    severity: Severity = "warning",
    confidence: float = 0.8,
    step: int | None = 10,
    value: float = 1.0,
    provisional: bool = False,
) -> Finding:
    return Finding(
        kind=kind,
        severity=severity,
        confidence=confidence,
        step=step,
        summary=f"{kind} at step {step}",
        evidence={"value": value, "blown": math.inf},
        recommendation=f"fix {kind}",
        changes={"optimizer.lr": 0.01},
        provisional=provisional,
    )


def _diagnosis(*findings: Finding) -> Diagnosis:
    return Diagnosis(findings, provisional=any(f.provisional for f in findings))


def test_upsert_inserts_a_diagnosis_with_everything_a_finding_says(store: Store) -> None:
    t, _ = _trials(store)
    changes = store.findings.upsert(
        t.project_id, t.id, _diagnosis(_finding("divergence", "critical"))
    )
    assert changes.added == ("divergence",) and changes.changed
    assert changes.previously_active == frozenset()
    (f,) = store.findings.for_trial(t.project_id, t.id).items
    assert (f.kind, f.severity, f.confidence, f.step) == ("divergence", "critical", 0.8, 10)
    assert (f.trial_id, f.sweep_id, f.project_id) == (t.id, t.sweep_id, t.project_id)
    assert f.summary == "divergence at step 10" and f.recommendation == "fix divergence"
    # Non-finite evidence is stored as the strings every lrlab answer uses.
    assert f.evidence == {"value": 1.0, "blown": "Infinity"}
    assert f.changes == {"optimizer.lr": 0.01} and f.alternatives == []
    assert f.active and not f.provisional
    assert f.created_at == f.updated_at and f.created_at.tzinfo is not None


def test_an_unchanged_diagnosis_changes_nothing(store: Store) -> None:
    t, _ = _trials(store)
    store.findings.upsert(t.project_id, t.id, _diagnosis(_finding("plateau")))
    (before,) = store.findings.for_trial(t.project_id, t.id).items
    changes = store.findings.upsert(t.project_id, t.id, _diagnosis(_finding("plateau")))
    assert not changes.changed and changes.previously_active == {"plateau"}
    (after,) = store.findings.for_trial(t.project_id, t.id).items
    assert after == before


def test_a_changed_finding_is_updated_in_place(store: Store) -> None:
    t, _ = _trials(store)
    store.findings.upsert(t.project_id, t.id, _diagnosis(_finding("overfitting", provisional=True)))
    (before,) = store.findings.for_trial(t.project_id, t.id).items
    changes = store.findings.upsert(
        t.project_id, t.id, _diagnosis(_finding("overfitting", "critical", 0.9, step=40, value=2.0))
    )
    assert changes.updated == ("overfitting",) and changes.added == ()
    (after,) = store.findings.for_trial(t.project_id, t.id).items
    assert after.id == before.id and after.created_at == before.created_at
    assert after.updated_at > before.updated_at
    assert (after.severity, after.confidence, after.step) == ("critical", 0.9, 40)
    assert after.evidence["value"] == 2.0 and not after.provisional


def test_kinds_no_longer_found_are_deactivated_and_can_come_back(store: Store) -> None:
    t, _ = _trials(store)
    store.findings.upsert(
        t.project_id, t.id, _diagnosis(_finding("plateau"), _finding("oscillation"))
    )
    changes = store.findings.upsert(t.project_id, t.id, _diagnosis(_finding("oscillation")))
    assert changes.deactivated == ("plateau",) and changes.updated == ()
    assert [f.kind for f in store.findings.for_trial(t.project_id, t.id).items] == ["oscillation"]
    every = store.findings.for_trial(t.project_id, t.id, FindingFilter(include_inactive=True)).items
    assert {(f.kind, f.active) for f in every} == {("plateau", False), ("oscillation", True)}
    back = store.findings.upsert(t.project_id, t.id, _diagnosis(_finding("plateau")))
    assert back.added == ("plateau",) and back.deactivated == ("oscillation",)
    (plateau,) = store.findings.for_trial(t.project_id, t.id).items
    assert plateau.kind == "plateau" and plateau.active


def test_upsert_of_an_unknown_trial_is_not_found(store: Store) -> None:
    t, _ = _trials(store)
    with pytest.raises(NotFound):
        store.findings.upsert(t.project_id, 999_999, _diagnosis(_finding("healthy", "info")))


def test_upsert_keeps_the_cached_analysis_with_the_findings(store: Store) -> None:
    t, other = _trials(store)
    analysis = {"provisional": False, "kinds": ["plateau"], "findings": []}
    store.findings.upsert(
        t.project_id, t.id, _diagnosis(_finding("plateau")), cache=(499, analysis)
    )
    cached = store.analyses.get(t.project_id, t.id)
    assert cached is not None and (cached.analyzed_step, cached.analysis) == (499, analysis)
    assert [f.kind for f in store.findings.for_trial(t.project_id, t.id).items] == ["plateau"]
    # Without a cache the stored analysis stays as it was; the other trial's is untouched.
    store.findings.upsert(t.project_id, t.id, _diagnosis(_finding("oscillation")))
    assert store.analyses.get(t.project_id, t.id).analysis == analysis  # type: ignore[union-attr]
    assert store.analyses.get(other.project_id, other.id).analysis is None  # type: ignore[union-attr]


def test_lists_filter_by_min_severity_and_kind_most_severe_first(store: Store) -> None:
    t1, t2 = _trials(store)
    store.findings.upsert(
        t1.project_id,
        t1.id,
        _diagnosis(_finding("plateau", "info", 0.9), _finding("divergence", "critical", 0.6)),
    )
    store.findings.upsert(
        t2.project_id,
        t2.id,
        _diagnosis(_finding("oscillation", "warning", 0.7), _finding("overfitting", "warning")),
    )
    sweep = store.findings.for_sweep(t1.project_id, t1.sweep_id)
    assert [f.kind for f in sweep.items] == ["divergence", "overfitting", "oscillation", "plateau"]
    assert sweep.total == 4
    warn = store.findings.for_sweep(t1.project_id, t1.sweep_id, FindingFilter("warning"))
    assert {f.kind for f in warn.items} == {"divergence", "overfitting", "oscillation"}
    crit = store.findings.for_trial(t1.project_id, t1.id, FindingFilter("critical"))
    assert [f.kind for f in crit.items] == ["divergence"]
    kinds = store.findings.for_sweep(
        t1.project_id, t1.sweep_id, FindingFilter(kinds=("plateau", "oscillation"))
    )
    assert [f.kind for f in kinds.items] == ["oscillation", "plateau"]
    page = store.findings.for_sweep(t1.project_id, t1.sweep_id, limit=2, offset=2)
    assert [f.kind for f in page.items] == ["oscillation", "plateau"] and page.total == 4


def test_lists_are_scoped_to_the_project(store: Store) -> None:
    (t,) = _trials(store, "p", n=1)
    store.findings.upsert(t.project_id, t.id, _diagnosis(_finding("plateau")))
    other = store.projects.create("other")
    with pytest.raises(NotFound):
        store.findings.for_trial(other.id, t.id)
    with pytest.raises(NotFound):
        store.findings.for_sweep(other.id, t.sweep_id)
    assert store.findings.changed_since(other.id) == []


def test_changed_since_pages_through_changes_in_order(store: Store) -> None:
    t1, t2 = _trials(store)
    store.findings.upsert(
        t1.project_id, t1.id, _diagnosis(_finding("plateau"), _finding("oscillation"))
    )
    store.findings.upsert(t2.project_id, t2.id, _diagnosis(_finding("divergence", "critical")))
    first = store.findings.changed_since(t1.project_id, sweep_id=t1.sweep_id, limit=2)
    assert len(first) == 2 and first == sorted(first, key=lambda f: f.cursor)
    rest = store.findings.changed_since(t1.project_id, first[-1].cursor, sweep_id=t1.sweep_id)
    assert [f.kind for f in rest] == ["divergence"]
    cursor = rest[-1].cursor
    assert store.findings.changed_since(t1.project_id, cursor, sweep_id=t1.sweep_id) == []

    # An unchanged pass is invisible; a deactivation is a change, seen with active False.
    store.findings.upsert(t2.project_id, t2.id, _diagnosis(_finding("divergence", "critical")))
    store.findings.upsert(t1.project_id, t1.id, _diagnosis(_finding("oscillation")))
    (gone,) = store.findings.changed_since(t1.project_id, cursor, sweep_id=t1.sweep_id)
    assert (gone.kind, gone.active) == ("plateau", False)
    only_t2 = store.findings.changed_since(t1.project_id, trial_id=t2.id)
    assert [f.kind for f in only_t2] == ["divergence"]
    assert len(store.findings.changed_since(None)) == 3  # every project: server-side pollers


def test_a_cursor_round_trips_through_its_token() -> None:
    cursor = FindingCursor(datetime(2026, 12, 2, 10, 0, 0, 123456, tzinfo=UTC), 42)
    assert FindingCursor.decode(cursor.encode()) == cursor
    for bad in ("", "12", "x-1", "1-", "-1", "1-2-3"):
        with pytest.raises(ValueError):
            FindingCursor.decode(bad)
