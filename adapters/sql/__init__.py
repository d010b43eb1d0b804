"""The SQL store: SQLite (default) and PostgreSQL, one schema, created and upgraded by alembic."""

from .connect import engine_for
from .store import (
    SQLStore,
    StoreError,
    StoreUnavailable,
    database_url,
    open_store,
    upgrade,
)

__all__ = [
    "SQLStore",
    "StoreError",
    "StoreUnavailable",
    "database_url",
    "engine_for",
    "open_store",
    "upgrade",
]
