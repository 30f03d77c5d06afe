"""One object that bundles the repositories over a database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from services.store.analyses_repo import AnalysisRepository
from services.store.db import Database
from services.store.findings_repo import FindingRepository
from services.store.history_repo import HistoryRepository
from services.store.metrics_repo import MetricRepository
from services.store.outbox_repo import NotificationRepository
from services.store.pending_sweeps_repo import PendingSweepRepository
from services.store.progress_repo import ProgressRepository
from services.store.projects_repo import ProjectRepository
from services.store.runs_repo import RunRepository
from services.store.search_repo import SearchRepository
from services.store.summaries_repo import SummaryRepository
from services.store.sweep_failures_repo import SweepFailureRepository
from services.store.sweeps_repo import SweepRepository
from services.store.trial_states_repo import TrialStateRepository
from services.store.trials_repo import TrialRepository


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.projects = ProjectRepository(db)
        self.sweeps = SweepRepository(db)
        self.trials = TrialRepository(db)
        self.metrics = MetricRepository(db)
        self.trial_states = TrialStateRepository(db)
        self.analyses = AnalysisRepository(db)
        self.summaries = SummaryRepository(db)
        self.runs = RunRepository(db)
        self.progress = ProgressRepository(db)
        self.notifications = NotificationRepository(db)
        self.findings = FindingRepository(db)
        self.search = SearchRepository(db)
        self.history = HistoryRepository(db)
        self.pending_sweeps = PendingSweepRepository(db)
        self.sweep_failures = SweepFailureRepository(db)

    @contextmanager
    def unit_of_work(self) -> Iterator[Store]:
        """Repository calls inside commit together at the end, or not at all."""
        with self.db.unit_of_work():
            yield self

    def ping(self) -> bool:
        from sqlalchemy import text

        try:
            with self.db.session() as s:
                s.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def close(self) -> None:
        self.db.dispose()


def open_store(url: str, *, upgrade: bool = True) -> Store:
    """Connect, and bring the schema to the latest migration unless told not to."""
    if upgrade:
        from services.store.db import ensure_sqlite_dir
        from services.store.migrate import upgrade_to_head

        ensure_sqlite_dir(url)
        upgrade_to_head(url)
    return Store(Database(url))
