"""The webhook outbox: events waiting for delivery, claimed by one sender at a time.

Enqueueing is idempotent on the event's key ("finding:<trial>:<kind>", "sweep_end:<sweep>"):
a second enqueue of the same event (another server, a restart) changes nothing. A sender
claims due events by pushing their next attempt past a lease, in one statement (SKIP
LOCKED on PostgreSQL), so two senders never post the same event at once, and one that
dies mid-delivery leaves its claims to be retried when the lease runs out.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, cast, exists, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from services.domain.outbox import SWEEP_END, Notification
from services.domain.records import TERMINAL_SWEEP_STATES, TrialStatus
from services.store.db import Database
from services.store.tables import NotificationRow, SweepRow, TrialRow


def _notification(row: NotificationRow) -> Notification:
    return Notification(
        id=row.id,
        project_id=row.project_id,
        sweep_id=row.sweep_id,
        key=row.key,
        url=row.url,
        event=row.event,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        failed_at=row.failed_at,
        last_error=row.last_error,
        created_at=row.created_at,
    )


def _pending() -> Any:
    return and_(NotificationRow.delivered_at.is_(None), NotificationRow.failed_at.is_(None))


class NotificationRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def enqueue(
        self,
        *,
        project_id: int,
        sweep_id: int | None,
        key: str,
        url: str,
        event: dict[str, Any],
        now: datetime,
    ) -> bool:
        """Add the event unless one with its key exists; whether it was added."""
        insert = pg_insert if self._db.is_postgres else sqlite_insert
        statement = (
            insert(NotificationRow)
            .values(
                project_id=project_id,
                sweep_id=sweep_id,
                key=key,
                url=url,
                event=event,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["key"])
        )
        with self._db.session() as s:
            result = s.execute(statement)
            return bool(getattr(result, "rowcount", 0))

    def claim_due(self, now: datetime, until: datetime, limit: int) -> list[Notification]:
        """Pending events due by `now`, oldest first, each held until `until`."""
        due = (
            select(NotificationRow.id)
            .where(_pending(), NotificationRow.next_attempt_at <= now)
            .order_by(NotificationRow.next_attempt_at, NotificationRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        with self._db.session() as s:
            rows = s.scalars(
                update(NotificationRow)
                .where(NotificationRow.id.in_(due))
                .values(next_attempt_at=until)
                .returning(NotificationRow)
            ).all()
            return sorted((_notification(r) for r in rows), key=lambda n: n.id)

    def has_pending(self) -> bool:
        """Whether any event is neither delivered nor given up on (retries included)."""
        with self._db.session() as s:
            return bool(s.scalar(select(exists().where(_pending()))))

    def delivered(self, notification_id: int, now: datetime) -> None:
        self._attempted(notification_id, delivered_at=now, last_error=None)

    def attempt_failed(
        self, notification_id: int, error: str, now: datetime, retry_at: datetime | None
    ) -> None:
        """Record a failed attempt: tried again at `retry_at`, or given up on (None)."""
        if retry_at is None:
            self._attempted(notification_id, last_error=error[:2000], failed_at=now)
        else:
            self._attempted(notification_id, last_error=error[:2000], next_attempt_at=retry_at)

    def _attempted(self, notification_id: int, **values: Any) -> None:
        with self._db.session() as s:
            s.execute(
                update(NotificationRow)
                .where(NotificationRow.id == notification_id)
                .values(attempts=NotificationRow.attempts + 1, **values)
            )

    def ended_sweeps(
        self, since: datetime, limit: int, skip: Collection[int] = ()
    ) -> list[tuple[int, int]]:
        """(project_id, sweep_id) of sweeps with a webhook that ended at or after `since`,
        have no trial still queued or running (a cancelled sweep waits for its running
        trials to stop) and no sweep_end event yet, oldest first; none of `skip`."""
        live = exists().where(
            TrialRow.sweep_id == SweepRow.id,
            TrialRow.status.in_([TrialStatus.QUEUED.value, TrialStatus.RUNNING.value]),
        )
        announced = exists().where(NotificationRow.key == SWEEP_END + cast(SweepRow.id, String))
        query = (
            select(SweepRow.project_id, SweepRow.id)
            .where(
                SweepRow.status.in_([s.value for s in TERMINAL_SWEEP_STATES]),
                SweepRow.finished_at >= since,
                SweepRow.spec[("notify", "url")].as_string().is_not(None),
                ~live,
                ~announced,
                SweepRow.id.not_in(list(skip)),
            )
            .order_by(SweepRow.finished_at, SweepRow.id)
            .limit(limit)
        )
        with self._db.session() as s:
            return [(int(p), int(i)) for p, i in s.execute(query)]
