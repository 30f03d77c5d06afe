"""Findings kept current: one row per (trial, kind), updated in place by each analysis.

The live analyzer upserts a trial's whole diagnosis at once: kinds it finds for the first
time are inserted, kinds whose content changed are updated, and kinds it no longer finds
are marked inactive (kept, so a stream can say "gone"). Every insert, change and
deactivation moves the row's `updated_at`; streams and webhooks poll `changed_since` with a
(updated_at, id) cursor.

The schema has one JSON column, `evidence`, for a finding's prose and numbers; it holds
{"summary", "evidence", "changes", "alternatives"} as Finding.to_dict() writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from services.analyzer.findings import SEVERITIES, Diagnosis, Severity
from services.domain.errors import NotFound
from services.domain.finding_records import FindingChanges, FindingCursor, StoredFinding
from services.domain.records import Page
from services.store.db import Database
from services.store.tables import FindingRow, SweepRow, TrialRow, utcnow

_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}
_DETAIL_KEYS = ("summary", "evidence", "changes", "alternatives")


def _stored(row: FindingRow) -> StoredFinding:
    detail = row.evidence or {}
    return StoredFinding(
        id=row.id,
        project_id=row.project_id,
        sweep_id=row.sweep_id,
        trial_id=row.trial_id,
        kind=row.kind,
        severity=row.severity,  # type: ignore[arg-type]  # only SEVERITIES are written
        confidence=row.confidence,
        step=row.step,
        summary=detail.get("summary", ""),
        evidence=detail.get("evidence", {}),
        recommendation=row.recommendation,
        changes=detail.get("changes", {}),
        alternatives=detail.get("alternatives", []),
        provisional=row.provisional,
        active=row.active,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _columns(finding: dict[str, Any]) -> dict[str, Any]:
    """A Finding.to_dict() as the row's column values."""
    return {
        "severity": finding["severity"],
        "confidence": finding["confidence"],
        "step": finding["step"],
        "recommendation": finding["recommendation"],
        "evidence": {key: finding[key] for key in _DETAIL_KEYS},
        "provisional": finding["provisional"],
    }


def at_least(severity: Severity) -> list[str]:
    """The severities from `severity` up."""
    return [s for s in SEVERITIES if _RANK[s] >= _RANK[severity]]


@dataclass(frozen=True)
class FindingFilter:
    """Which findings a list returns: active ones of every kind and severity by default."""

    min_severity: Severity | None = None
    kinds: tuple[str, ...] | None = None
    include_inactive: bool = False

    def clauses(self) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if not self.include_inactive:
            where.append(FindingRow.active.is_(True))
        if self.min_severity is not None:
            where.append(FindingRow.severity.in_(at_least(self.min_severity)))
        if self.kinds is not None:
            where.append(FindingRow.kind.in_(self.kinds))
        return where


_ALL = FindingFilter()


class FindingRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- writes -------------------------------------------------------------------------
    def upsert(
        self,
        project_id: int,
        trial_id: int,
        diagnosis: Diagnosis,
        *,
        cache: tuple[int | None, dict[str, Any]] | None = None,
    ) -> FindingChanges:
        """Make the trial's stored findings match `diagnosis` (see the module doc).
        Unchanged findings keep their updated_at, so a pass that learns nothing new is
        invisible to `changed_since`. `cache`, (analyzed step, analysis JSON), becomes the
        trial's cached analysis in the same transaction: one round of locks, not two."""
        found = {f.kind: f.to_dict() for f in diagnosis.findings}
        with self._db.session() as s:
            trial = self._lock_trial(s, project_id, trial_id)
            if cache is not None:
                trial.analyzed_step, trial.analysis = cache
                trial.analyzer_version = cache[1].get("analyzer_version")
            rows = {
                r.kind: r
                for r in s.scalars(select(FindingRow).where(FindingRow.trial_id == trial_id))
            }
            before = frozenset(kind for kind, r in rows.items() if r.active)
            now = utcnow()
            added: list[str] = []
            updated: list[str] = []
            for kind, finding in found.items():
                values = _columns(finding)
                row = rows.get(kind)
                if row is None:
                    row = FindingRow(
                        project_id=trial.project_id,
                        sweep_id=trial.sweep_id,
                        trial_id=trial_id,
                        kind=kind,
                        created_at=now,
                        active=True,
                    )
                    s.add(row)
                elif row.active and all(getattr(row, k) == v for k, v in values.items()):
                    continue
                (updated if row.active and kind in before else added).append(kind)
                for key, value in values.items():
                    setattr(row, key, value)
                row.active = True
                row.updated_at = now
            gone = sorted(before - found.keys())
            for kind in gone:
                rows[kind].active = False
                rows[kind].updated_at = now
            return FindingChanges(tuple(added), tuple(updated), tuple(gone), before)

    def _lock_trial(self, s: Session, project_id: int, trial_id: int) -> TrialRow:
        """The trial's row, with writers of its findings serialised: the row's lock on
        PostgreSQL (NO KEY: others may still reference it), the database's write lock on
        SQLite, taken up front so the read that follows cannot go stale."""
        if not self._db.is_postgres:
            conn = s.connection()
            if not getattr(conn.connection.dbapi_connection, "in_transaction", False):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
        row = s.scalars(
            select(TrialRow).where(TrialRow.id == trial_id).with_for_update(key_share=True)
        ).one_or_none()
        if row is None or row.project_id != project_id:
            raise NotFound(f"trial {trial_id} not found")
        return row

    # -- reads --------------------------------------------------------------------------
    def for_trial(
        self,
        project_id: int,
        trial_id: int,
        filters: FindingFilter = _ALL,
        *,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[StoredFinding]:
        """The trial's findings, most severe and most confident first. NotFound when the
        trial is not the project's."""
        where = [FindingRow.trial_id == trial_id]
        return self._page(project_id, TrialRow, trial_id, where, filters, limit, offset)

    def for_sweep(
        self,
        project_id: int,
        sweep_id: int,
        filters: FindingFilter = _ALL,
        *,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[StoredFinding]:
        """Findings of all the sweep's trials, most severe and most confident first.
        NotFound when the sweep is not the project's."""
        where = [FindingRow.sweep_id == sweep_id]
        return self._page(project_id, SweepRow, sweep_id, where, filters, limit, offset)

    def _page(
        self,
        project_id: int,
        owner: type[TrialRow] | type[SweepRow],
        owner_id: int,
        where: list[ColumnElement[bool]],
        filters: FindingFilter,
        limit: int,
        offset: int,
    ) -> Page[StoredFinding]:
        where = [*where, *filters.clauses()]
        with self._db.session() as s:
            owner_project = s.scalar(select(owner.project_id).where(owner.id == owner_id))
            if owner_project != project_id:
                noun = "trial" if owner is TrialRow else "sweep"
                raise NotFound(f"{noun} {owner_id} not found")
            total = s.scalar(select(func.count()).select_from(FindingRow).where(*where)) or 0
            query = (
                select(FindingRow)
                .where(*where)
                .order_by(
                    case(_RANK, value=FindingRow.severity, else_=-1).desc(),
                    FindingRow.confidence.desc(),
                    FindingRow.id,
                )
                .limit(limit)
                .offset(offset)
            )
            items = [_stored(r) for r in s.scalars(query)]
        return Page(items=items, total=total, limit=limit, offset=offset)

    def changed_since(
        self,
        project_id: int | None,
        cursor: FindingCursor | None = None,
        *,
        sweep_id: int | None = None,
        trial_id: int | None = None,
        limit: int = 500,
    ) -> list[StoredFinding]:
        """Findings inserted, changed or deactivated after `cursor`, oldest change first.

        Scoped to a project (None: every project, for server-side pollers such as the
        webhook sender) and optionally to one sweep or one trial. Inactive findings are
        included: a deactivation is a change (`active` False says the condition is gone).
        Continue from the last item's `.cursor`; None starts from the first finding.
        Checks no ownership: look the sweep or trial up in the project first.

        The live analyzer writes each trial's findings in one transaction stamped with one
        time, one trial after another, so changes commit in cursor order."""
        where = _scope(project_id, sweep_id, trial_id)
        if cursor is not None:
            at = FindingRow.updated_at
            later = or_(
                at > cursor.updated_at, and_(at == cursor.updated_at, FindingRow.id > cursor.id)
            )
            where.append(later)
        query = (
            select(FindingRow)
            .where(*where)
            .order_by(FindingRow.updated_at, FindingRow.id)
            .limit(limit)
        )
        with self._db.session() as s:
            return [_stored(r) for r in s.scalars(query)]


def _scope(
    project_id: int | None, sweep_id: int | None, trial_id: int | None
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if project_id is not None:
        where.append(FindingRow.project_id == project_id)
    if sweep_id is not None:
        where.append(FindingRow.sweep_id == sweep_id)
    if trial_id is not None:
        where.append(FindingRow.trial_id == trial_id)
    return where
