"""Engine and session handling: one session per operation, rolled back on error.

A unit of work (`Database.unit_of_work`) widens that to a use case: every repository call
made inside it, on this thread, joins its one session and commits once at its end, so a
use case that spans repositories leaves nothing half-made when a step fails. (Metric
writes go through a raw connection for bulk speed and are not part of one.)"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _configure_sqlite(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers (the API) proceed while a writer (a worker's batch) holds the lock;
    # the busy timeout makes concurrent writers wait instead of failing at once.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def ensure_sqlite_dir(url: str) -> None:
    """SQLite creates the file but not its folder."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


class Database:
    """An engine plus a session factory for one database URL."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        parsed = make_url(url)
        self.url = url
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.dialect == "sqlite":
            ensure_sqlite_dir(url)
            kwargs["connect_args"] = {"check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
            kwargs["pool_size"] = 10
            kwargs["max_overflow"] = 20
        self.engine: Engine = create_engine(url, **kwargs)
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _configure_sqlite)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # The session of the unit of work open in this context, if any.
        self._current: ContextVar[Session | None] = ContextVar(f"uow-{id(self)}", default=None)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on exit, or the open unit of work's (which commits later)."""
        current = self._current.get()
        if current is not None:
            yield current
            return
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One transaction for everything inside: committed at the end, or rolled back."""
        if self._current.get() is not None:  # nested: part of the outer one
            with self.session() as joined:
                yield joined
            return
        with self.session() as session:
            token = self._current.set(session)
            try:
                yield session
            finally:
                self._current.reset(token)

    def dispose(self) -> None:
        self.engine.dispose()
