"""The store contract on PostgreSQL (``$XIESHANG_TEST_PG_URL``), each test in a new database."""

from __future__ import annotations

import pytest
from store_contract import SqlStoreContract

pytestmark = pytest.mark.postgres


class TestPostgresStore(SqlStoreContract):
    @pytest.fixture
    def url(self, pg_database: str) -> str:
        return pg_database
