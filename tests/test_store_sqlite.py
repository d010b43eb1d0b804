"""The store contract on SQLite, and what is particular to SQLite: settings, URLs, locking."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_contract import SqlStoreContract


class TestSqliteStore(SqlStoreContract):
    @pytest.fixture
    def url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path}/xieshang.db"
