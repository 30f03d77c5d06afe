"""The store: PostgreSQL (production) or SQLite (embedded), behind one set of repositories."""

from services.store.db import Database
from services.store.facade import Store, open_store

__all__ = ["Database", "Store", "open_store"]
