"""External runs: trials logged from a training script elsewhere (POST /runs, like
`wandb.init`). Each is a trial of kind "external" in a sweep of method "external" that
holds just it, so every trial and metric read works on it unchanged; the scheduler never
claims, requeues or launches one (it has no spec to run)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from services.domain.errors import Conflict, NotFound
from services.domain.kinds import SweepMethod, TrialKind
from services.domain.records import Page, Run, SweepStatus, TrialStatus
from services.domain.submissions import NewRun
from services.store.db import Database
from services.store.tables import MetricPointRow, SweepRow, TrialRow, utcnow
from services.store.trial_rows import record_event, trial_from_row


def _run(trial: TrialRow, sweep: SweepRow) -> Run:
    return Run(
        trial=trial_from_row(trial),
        name=sweep.name,
        tags=list(sweep.spec.get("tags") or []),
        metric_name=sweep.metric_name,
        metric_goal=sweep.metric_goal,
    )


class RunRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, project_id: int, run: NewRun) -> Run:
        with self._db.session() as s:
            now = utcnow()
            sweep = SweepRow(
                project_id=project_id,
                name=run.name,
                method=SweepMethod.EXTERNAL,
                spec={
                    "name": run.name,
                    "method": SweepMethod.EXTERNAL.value,
                    "config": run.config,
                    "tags": run.tags,
                    "metric": {"name": run.metric_name, "goal": run.metric_goal},
                },
                status=SweepStatus.RUNNING.value,
                metric_name=run.metric_name,
                metric_goal=run.metric_goal,
                max_trials=1,
                max_concurrent=1,
            )
            s.add(sweep)
            s.flush()
            trial = TrialRow(
                sweep_id=sweep.id,
                project_id=project_id,
                number=0,
                status=TrialStatus.RUNNING.value,
                params=run.config,
                # An external run has no TrialSpec: its spec holds how to read its series.
                spec={"metric_names": run.metric_names},
                attempt=0,
                max_restarts=0,
                cancel_requested=False,
                kind=TrialKind.EXTERNAL,
                started_at=now,
            )
            s.add(trial)
            s.flush()
            record_event(s, trial.id, TrialStatus.RUNNING, "external run started")
            return _run(trial, sweep)

    @staticmethod
    def _rows(s: Session, project_id: int, run_id: int) -> tuple[TrialRow, SweepRow]:
        trial = s.get(TrialRow, run_id)
        if trial is None or trial.project_id != project_id or trial.kind != TrialKind.EXTERNAL:
            raise NotFound(f"run {run_id} not found")
        sweep = s.get(SweepRow, trial.sweep_id)
        assert sweep is not None  # a trial's sweep is its foreign key
        return trial, sweep

    def get(self, project_id: int, run_id: int) -> Run:
        with self._db.session() as s:
            return _run(*self._rows(s, project_id, run_id))

    def list(
        self, project_id: int, *, limit: int, offset: int, status: TrialStatus | None = None
    ) -> Page[Run]:
        """The project's runs, newest first."""
        with self._db.session() as s:
            where = [TrialRow.project_id == project_id, TrialRow.kind == TrialKind.EXTERNAL]
            if status is not None:
                where.append(TrialRow.status == status.value)
            total = s.scalar(select(func.count()).select_from(TrialRow).where(*where)) or 0
            rows = s.execute(
                select(TrialRow, SweepRow)
                .join(SweepRow, SweepRow.id == TrialRow.sweep_id)
                .where(*where)
                .order_by(TrialRow.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
            items = [_run(t, sw) for t, sw in rows]
            return Page(items=items, total=total, limit=limit, offset=offset)

    def touch(self, project_id: int, run_id: int) -> bool:
        """Note a sign of life from a running run's script (a heartbeat, a metric batch);
        False when the project has no such running run (finished, given up as silent)."""
        with self._db.session() as s:
            done = s.execute(
                update(TrialRow)
                .where(
                    TrialRow.id == run_id,
                    TrialRow.project_id == project_id,
                    TrialRow.kind == TrialKind.EXTERNAL,
                    TrialRow.status == TrialStatus.RUNNING.value,
                )
                .values(heartbeat_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            return getattr(done, "rowcount", 0) == 1

    def silent(self, seconds: float) -> tuple[tuple[int, int], ...]:
        """(project id, run id) of the running runs with no sign of life for `seconds`
        (counted from their start when none ever came)."""
        cutoff = utcnow() - timedelta(seconds=seconds)
        last_seen = func.coalesce(TrialRow.heartbeat_at, TrialRow.started_at)
        with self._db.session() as s:
            rows = s.execute(
                select(TrialRow.project_id, TrialRow.id)
                .where(
                    TrialRow.kind == TrialKind.EXTERNAL,
                    TrialRow.status == TrialStatus.RUNNING.value,
                    last_seen < cutoff,
                )
                .order_by(TrialRow.id)
            ).all()
        return tuple((int(p), int(r)) for p, r in rows)

    def finish(
        self,
        project_id: int,
        run_id: int,
        status: TrialStatus | None,
        *,
        reason: str | None = None,
    ) -> Run:
        """End a running run: `status` (default succeeded, or cancelled when a cancel was
        asked for), its last step from its series, its sweep finished; `reason` is kept as
        the trial's stop_reason. Finishing again is harmless (a client retrying) unless it
        names a different final status."""
        if status is not None and not status.is_terminal:
            raise ValueError(f"finish needs a terminal status, not {status.value!r}")
        with self._db.session() as s:
            trial, sweep = self._rows(s, project_id, run_id)
            final = status or (
                TrialStatus.CANCELLED if trial.cancel_requested else TrialStatus.SUCCEEDED
            )
            last_step = s.scalar(
                select(func.max(MetricPointRow.step)).where(MetricPointRow.trial_id == run_id)
            )
            now = utcnow()
            # Fenced on "running" so two finishes cannot both apply, on either backend.
            ended: dict[str, Any] = {
                "status": final.value,
                "finished_at": now,
                "last_step": last_step,
            }
            if reason is not None:
                ended["stop_reason"] = reason
            done = s.execute(
                update(TrialRow)
                .where(TrialRow.id == run_id, TrialRow.status == TrialStatus.RUNNING.value)
                .values(**ended)
            )
            if getattr(done, "rowcount", 0) != 1:
                s.refresh(trial)
                if status is not None and trial.status != status.value:
                    raise Conflict(
                        f"run {run_id} already finished as {trial.status!r}", field="status"
                    )
                return _run(trial, sweep)
            record_event(s, run_id, final, reason or f"run {final.value}")
            if sweep.status == SweepStatus.RUNNING.value:
                sweep.status = SweepStatus.FINISHED.value
                sweep.finished_at = sweep.updated_at = now
            s.flush()
            s.refresh(trial)
            return _run(trial, sweep)
