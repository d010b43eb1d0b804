"""The store contract on the in-memory store."""

from __future__ import annotations

import pytest
from store_contract import StoreContract

from xieshang.adapters.memory import MemoryStore


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore()
