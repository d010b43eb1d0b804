"""The store contract on PostgreSQL (``$XIESHANG_TEST_PG_URL``), each test in a new schema."""

from __future__ import annotations

import pytest
from store_contract import SqlStoreContract

from xieshang.adapters.sql import StoreUnavailable, open_store


@pytest.mark.postgres
class TestPostgresStore(SqlStoreContract):
    @pytest.fixture
    def url(self, pg_database: str) -> str:
        return pg_database


def test_a_server_that_does_not_answer_is_store_unavailable() -> None:
    """Opening a store on a port where no server listens fails with StoreUnavailable."""
    with pytest.raises(StoreUnavailable, match="unavailable") as caught:
        open_store("postgresql://nobody@127.0.0.1:9/none?connect_timeout=2")
    assert "127.0.0.1" in caught.value.details["driver_error"]
