"""The store contract on the in-memory store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from store_contract import StoreContract
from test_children import OFFICE, child_of, filed, start_handling, unit

from xieshang import Engine, FixedClock, Instance
from xieshang.adapters.memory import MemoryStore
from xieshang.workflows import bundled


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore()


def test_an_instance_lent_for_a_step_stays_as_it_was_whatever_comes_after() -> None:
    """``load_shared`` lends the stored object, not a copy: every later commit replaces what
    the store holds whole (steps that set lists, children started, a child's step that touches
    its parent's ``children_version``), so each object lent stays exactly as it was lent, and
    the engine's steps, judged on lent objects, leave stored instances equal to their replay."""
    store = MemoryStore()
    engine = Engine(store, bundled(), FixedClock(datetime(2024, 3, 4, 9, tzinfo=UTC)))
    pid = filed(engine)
    lent: list[tuple[Instance, Instance]] = []

    def lend(iid: str) -> None:
        held = store.load_shared(iid)
        assert held is not None and held is store.load_shared(iid)  # the store's own
        assert store.load(iid) is not held  # what load gives is still a copy
        lent.append((held, held.copy()))

    lend(pid)
    assign = {"mode": "lead_assisting", "lead_unit": "transport", "units": ["transport", "housing"]}
    engine.fire(pid, "assign", OFFICE, assign)
    lend(pid)
    kid = child_of(engine, pid, "transport")
    lend(kid)
    start_handling(engine, kid, unit("transport"))  # child steps: each touches the parent
    lend(pid)
    lend(kid)
    stored = store.load_shared(pid)
    assert stored is not None and stored.children_version > lent[1][0].children_version
    for held, then in lent:
        assert held == then  # nothing in it changed, nested lists included
    assert engine.verify() == []
