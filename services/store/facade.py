"""One object that bundles the repositories over a database."""

from __future__ import annotations

from services.store.analyses import AnalysisRepository
from services.store.db import Database
from services.store.findings import FindingRepository
from services.store.history import HistoryRepository
from services.store.metrics import MetricRepository
from services.store.notifications import NotificationRepository
from services.store.pending_sweeps import PendingSweepRepository
from services.store.progress import ProgressRepository
from services.store.projects import ProjectRepository
from services.store.runs import RunRepository
from services.store.search import SearchRepository
from services.store.summaries import SummaryRepository
from services.store.sweeps import SweepRepository
from services.store.trial_states import TrialStateRepository


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.projects = ProjectRepository(db)
        self.sweeps = SweepRepository(db)
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
