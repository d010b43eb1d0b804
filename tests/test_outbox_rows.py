"""A step's events reach the outbox in the order the step made them, however many there are,
each at a position of its own after those before."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from store_contract import bump, propose

from xieshang import Engine
from xieshang.records import Commit


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(counts=st.lists(st.sampled_from([1, 2, 17, 40, 450]), max_size=3))
@example(counts=[450, 2])  # more events than one insert takes: several, in order
def test_each_commits_events_land_in_order(engine: Engine, counts: list[int]) -> None:
    store = engine.store
    current = propose(engine)
    head = store.outbox_head()
    made: list[str] = []
    for count in counts:
        new, entry, event = bump(current)
        events = [
            replace(event, id=f"{event.id}-{k}", body={**event.body, "k": k}) for k in range(count)
        ]
        store.apply(Commit(updates=[(new, current.version)], history=[entry], events=events))
        made += [e.id for e in events]
        current = new
    written = store.outbox_since(head, 1000)
    assert [e.id for _, e in written] == made
    assert [e.body.get("k") for _, e in written] == [int(i.rsplit("-", 1)[1]) for i in made]
    positions = [p for p, _ in written]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
