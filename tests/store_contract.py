"""The store contract: what every store promises, run against memory, SQLite and PostgreSQL.

:class:`StoreContract` holds the behaviour tests; a backend's test module subclasses it and
provides the ``store`` fixture. :class:`SqlStoreContract` adds what only a database keeps:
durability across reopening, the migrated schema, atomicity under an injected fault, and the
translation of driver errors.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from xieshang import (
    Actor,
    ConcurrencyConflict,
    ConflictCase,
    Engine,
    FixedClock,
    Forbidden,
    InvalidPayload,
    NotFound,
    Query,
    Registry,
    Store,
    TransitionNotAllowed,
    UnknownTrigger,
)
from xieshang.adapters.sql import SQLStore, StoreError, open_store
from xieshang.adapters.sql import readers as sql_readers
from xieshang.adapters.sql.store import sa_engine
from xieshang.jsontext import canonical_json
from xieshang.records import Commit, EventRecord, HistoryEntry, Instance, TimerRecord, iso

MEMBER = Actor.of("m1", "member", org="gy")
OTHER_MEMBER = Actor.of("m2", "member", org="gy")
COMMITTEE = Actor.of("c1", "proposal_committee", org="gy")
OFFICE = Actor.of("s1", "supervision_office", org="gy")
UNIT = Actor.of("u1", "handling_unit", org="gy", unit="U1")
CHAIR = Actor.of("ch1", "chairpersons_council", org="gy")
FAR_FUTURE = datetime(9000, 1, 1, tzinfo=UTC)


def propose(
    engine: Engine, title: str = "关于社区养老服务的建议", *, by: Actor = MEMBER, **data: Any
) -> Instance:
    return engine.start("proposal", {"title": title, "first_proposer": by.id, **data}, by)


def to_filed(engine: Engine, instance_id: str) -> Instance:
    engine.fire(instance_id, "submit", MEMBER, {"category": "society"})
    engine.fire(instance_id, "start_review", COMMITTEE)
    return engine.fire(instance_id, "file", COMMITTEE, {"number": f"N-{instance_id[-6:]}"})


def to_closed(engine: Engine, instance_id: str) -> Instance:
    """File, assign to unit U1, let its handling child reply (the join), evaluate: closed."""
    to_filed(engine, instance_id)
    engine.fire(instance_id, "assign", OFFICE, {"mode": "sole", "units": ["U1"]})
    [child] = engine.children(instance_id)
    engine.fire(child.id, "acknowledge", UNIT, {"contact_person": "联系人"})
    engine.fire(child.id, "contact_proposer", UNIT, {"mode": "face_to_face"})
    engine.fire(
        child.id,
        "draft_reply",
        UNIT,
        {"reply_class": "A", "reply_text": "已采纳", "signer": "局长"},
    )
    engine.fire(child.id, "submit_reply", UNIT)
    engine.fire(child.id, "approve_reply", OFFICE)
    return engine.fire(instance_id, "evaluate", MEMBER, {"satisfaction": "satisfied"})


def bump(
    current: Instance,
    *,
    seq: int | None = None,
    command_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> tuple[Instance, HistoryEntry, EventRecord]:
    """A hand-made next step of ``current``: the new row, its history entry and one event."""
    new = current.copy()
    new.version += 1
    new.data["note"] = f"step {new.version}"
    now = iso(current.updated_at + timedelta(minutes=1))
    entry = HistoryEntry(
        instance_id=current.id,
        seq=seq or new.version,
        workflow=current.workflow,
        workflow_version=current.workflow_version,
        definition_hash=current.definition_hash,
        trigger="note",
        source=current.state,
        target=current.state,
        actor=MEMBER.to_dict(),
        role="member",
        reason=None,
        payload=payload or {"n": new.version},
        visibility="internal",
        occurred_at=now,
        recorded_at=now,
        command_id=command_id,
        prev_hash=current.head_hash,
    ).sealed()
    new.head_hash = entry.hash
    event = EventRecord(
        f"{current.id}-{entry.seq}-0",
        current.id,
        entry.seq,
        "xieshang.noted",
        current.org,
        {"id": f"{current.id}-{entry.seq}-0", "n": new.version},
    )
    return new, entry, event


def ids_of(store: Store, query: Query) -> list[str]:
    return [i.id for i in store.query(query)]


def step_commit(current: Instance, **options: Any) -> Commit:
    new, entry, event = bump(current, **options)
    return Commit(updates=[(new, current.version)], history=[entry], events=[event])


class StoreContract:
    """The promises every store keeps. Subclasses provide the ``store`` fixture."""

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        raise NotImplementedError  # each backend's module provides its store

    @pytest.fixture
    def engine(self, store: Store, registry: Registry, clock: FixedClock) -> Engine:
        counter = itertools.count(1)
        return Engine(store, registry, clock, ids=lambda: f"p{next(counter):04d}")

    def counts(self, store: Store) -> dict[str, int]:
        """Rows per kind of record, read through the store's ports."""
        ids = list(store.instance_ids())
        return {
            "instances": len(ids),
            "history": sum(len(store.history(i)) for i in ids),
            "outbox": len(store.outbox()),
            "timers": len(store.due_timers(FAR_FUTURE, 10**6)),
        }

    # -- commands through the engine ---------------------------------------------------------

    def test_start_persists_instance_and_its_creation_row(
        self, engine: Engine, store: Store
    ) -> None:
        """start writes the instance at version 1 and one history row, the creation."""
        started = propose(engine)
        stored = store.load(started.id, fresh=True)
        assert stored == started
        assert stored is not None and stored.version == 1 and stored.state == "draft"
        [row] = store.history(started.id)
        assert (row.seq, row.trigger, row.source, row.target) == (1, "start", None, "draft")
        assert row.hash == stored.head_hash

    def test_fire_persists_the_new_state_and_version(self, engine: Engine, store: Store) -> None:
        """fire moves the stored instance and its version by one per accepted command."""
        started = propose(engine)
        moved = engine.fire(started.id, "submit", MEMBER, {"category": "economy"})
        stored = store.load(started.id, fresh=True)
        assert stored == moved
        assert stored is not None
        assert (stored.state, stored.version, stored.data["category"]) == (
            "submitted",
            2,
            "economy",
        )

    def test_accepted_command_writes_one_history_row_and_its_events(
        self, engine: Engine, store: Store
    ) -> None:
        """One accepted command adds exactly one history row and the outbox rows of its events."""
        started = propose(engine)
        before = self.counts(store)
        engine.fire(started.id, "submit", MEMBER, {"category": "economy"})
        after = self.counts(store)
        events = store.outbox(started.id)
        new_events = [e for e in events if e.seq == 2]
        assert [e.type for e in new_events] == [
            "xieshang.instance.transitioned",
            "xieshang.proposal.submitted",
        ]
        assert after["history"] == before["history"] + 1
        assert after["outbox"] == before["outbox"] + len(new_events)
        assert after["instances"] == before["instances"]

    def test_changing_what_a_step_answered_changes_nothing_stored(
        self, engine: Engine, store: Store
    ) -> None:
        """The instance a command answers is the caller's: changing its data, lists too, leaves
        the stored instance, its history and its events as they were written."""
        started = propose(engine)
        payload = {"category": "economy", "suggested_units": ["U1"]}
        moved = engine.fire(started.id, "submit", MEMBER, payload)

        def written() -> tuple[str, list[str], list[str]]:
            stored = store.load(started.id, fresh=True)
            assert stored is not None
            events = [canonical_json(e.body) for e in store.outbox(started.id)]
            return (
                canonical_json(stored.to_dict()),
                events,
                [e.hash for e in store.history(started.id)],
            )

        kept = written()
        moved.data["proposers"].append("m9")
        moved.data["suggested_units"].append("U9")
        moved.data["title"] = "changed"
        payload["suggested_units"].append("U8")
        assert written() == kept
        assert engine.verify(started.id) == []

    @pytest.mark.parametrize(
        ("trigger", "actor", "payload", "error"),
        [
            # a draft is read by its author only: to anyone else it does not exist
            ("submit", OTHER_MEMBER, {"category": "economy"}, NotFound),
            ("submit", COMMITTEE, {"category": "economy"}, NotFound),
            ("submit", MEMBER, {"category": "sports"}, InvalidPayload),
            ("file", MEMBER, {"number": "N1"}, TransitionNotAllowed),  # wrong state
            ("publish", MEMBER, {}, UnknownTrigger),
        ],
    )
    def test_refused_command_writes_nothing(
        self,
        engine: Engine,
        store: Store,
        trigger: str,
        actor: Actor,
        payload: dict[str, Any],
        error: type[Exception],
    ) -> None:
        """A refused command leaves every table and the instance exactly as they were."""
        started = propose(engine)
        before = (
            self.counts(store),
            store.load(started.id, fresh=True),
            store.history(started.id),
            store.outbox(),
        )
        with pytest.raises(error):
            engine.fire(started.id, trigger, actor, payload)
        after = (
            self.counts(store),
            store.load(started.id, fresh=True),
            store.history(started.id),
            store.outbox(),
        )
        assert after == before

    def test_stale_expected_version_raises_conflict_and_changes_nothing(
        self, engine: Engine, store: Store
    ) -> None:
        """A command expecting an old version is refused with the versions named; nothing moves."""
        started = propose(engine)
        engine.fire(started.id, "submit", MEMBER, {"category": "economy"})
        before = (self.counts(store), store.load(started.id, fresh=True))
        with pytest.raises(ConcurrencyConflict) as caught:
            engine.fire(started.id, "start_review", COMMITTEE, expected_version=1)
        assert caught.value.case is ConflictCase.STALE_VERSION
        assert (caught.value.instance_id, caught.value.expected, caught.value.actual) == (
            started.id,
            1,
            2,
        )
        assert (self.counts(store), store.load(started.id, fresh=True)) == before

    def test_retried_command_id_returns_the_first_result_and_writes_nothing(
        self, engine: Engine, store: Store
    ) -> None:
        """A command id seen before returns the first result again and writes no row."""
        started = propose(engine)
        first = engine.fire(
            started.id, "submit", MEMBER, {"category": "economy"}, command_id="cmd-1"
        )
        before = self.counts(store)
        again = engine.fire(
            started.id, "submit", MEMBER, {"category": "economy"}, command_id="cmd-1"
        )
        assert (again.state, again.version, again.data) == (first.state, first.version, first.data)
        assert self.counts(store) == before
        found = store.find_command("cmd-1")
        assert found is not None and (found.instance_id, found.seq) == (started.id, 2)
        assert store.find_command("cmd-unknown") is None

    def test_separation_of_duties_reads_who_acted_from_history(
        self, engine: Engine, store: Store
    ) -> None:
        """actors_of names the actors who fired the given triggers, so not_by can refuse them."""
        both = Actor.of("c1", "member", "proposal_committee", org="gy")
        started = propose(engine, by=both)
        engine.fire(started.id, "submit", both, {"category": "economy"})
        engine.fire(started.id, "start_review", COMMITTEE)
        assert store.actors_of(started.id, frozenset({"submit"})) == {"c1"}
        assert store.actors_of(started.id, frozenset({"start_review", "submit"})) == {"c1"}
        assert store.actors_of(started.id, frozenset({"file"})) == set()
        with pytest.raises(Forbidden):
            engine.fire(started.id, "file", both, {"number": "N1"})

    def test_replay_of_stored_history_equals_the_stored_instance(
        self, engine: Engine, store: Store
    ) -> None:
        """Re-running the stored history gives the stored state and data."""
        started = propose(engine)
        closed = to_closed(engine, started.id)
        replayed = engine.replay(started.id)
        assert (replayed.state, replayed.data, replayed.version) == (
            closed.state,
            closed.data,
            closed.version,
        )
        assert replayed.head_hash == closed.head_hash

    def test_verify_finds_nothing_after_a_whole_lifecycle(
        self, engine: Engine, store: Store
    ) -> None:
        """A proposal driven from draft to closed verifies: chain, order and replay."""
        for title in ("一", "二"):
            to_closed(engine, propose(engine, title).id)
        assert engine.verify() == []
        assert [r.seq for r in store.history("p0001")] == list(range(1, 8))

    # -- the store directly ------------------------------------------------------------------

    def test_stale_update_in_a_commit_writes_none_of_it(self, engine: Engine, store: Store) -> None:
        """A commit whose second update is stale raises ConcurrencyConflict and writes nothing."""
        a, b = propose(engine, "a"), propose(engine, "b")
        new_a, entry_a, event_a = bump(a)
        new_b, entry_b, event_b = bump(b)
        before = (self.counts(store), store.load(a.id, fresh=True), store.load(b.id, fresh=True))
        commit = Commit(
            updates=[(new_a, 1), (new_b, 7)], history=[entry_a, entry_b], events=[event_a, event_b]
        )
        with pytest.raises(ConcurrencyConflict) as caught:
            store.apply(commit)
        assert caught.value.case is ConflictCase.ANOTHER_WRITER
        assert (caught.value.instance_id, caught.value.expected, caught.value.actual) == (
            b.id,
            7,
            1,
        )
        assert (
            self.counts(store),
            store.load(a.id, fresh=True),
            store.load(b.id, fresh=True),
        ) == before
        assert store.load(a.id) == a  # and no cache kept the half that was refused

    def test_insert_of_an_existing_id_raises_conflict(self, engine: Engine, store: Store) -> None:
        """Starting an instance under an id that exists is a conflict naming the stored version."""
        started = propose(engine)
        entry = replace(store.history(started.id)[0], command_id=None)
        before = self.counts(store)
        with pytest.raises(ConcurrencyConflict) as caught:
            store.apply(Commit(inserts=[started.copy()], history=[entry]))
        assert caught.value.case is ConflictCase.INSTANCE_EXISTS
        assert (caught.value.instance_id, caught.value.actual) == (started.id, 1)
        assert self.counts(store) == before

    def test_reused_command_id_raises_conflict_naming_the_first_row(
        self, engine: Engine, store: Store
    ) -> None:
        """A reused command id refuses the whole commit, naming the first use's instance and seq."""
        a, b = propose(engine, "a"), propose(engine, "b")
        store.apply(step_commit(a, command_id="once"))
        before = (self.counts(store), store.load(b.id, fresh=True))
        with pytest.raises(ConcurrencyConflict) as caught:
            store.apply(step_commit(b, command_id="once"))
        assert caught.value.case is ConflictCase.COMMAND_USED
        assert (caught.value.instance_id, caught.value.actual) == (a.id, 2)
        assert (self.counts(store), store.load(b.id, fresh=True)) == before

    def test_history_round_trips_every_field_exactly(self, engine: Engine, store: Store) -> None:
        """Stored history entries come back equal, field for field, and their hashes still hold."""
        started = propose(engine)
        payload = {"text": "意见：“加快”", "nested": {"list": [1, 2.5, True, None]}, "n": 10**12}
        new, entry, event = bump(started, payload=payload, command_id="c-9")
        store.apply(Commit(updates=[(new, 1)], history=[entry], events=[event]))
        stored = store.history(started.id)
        assert stored[1] == entry
        assert all(row.compute_hash() == row.hash for row in stored)
        assert store.find_command("c-9") == entry
        assert store.outbox(started.id)[-1] == event

    def test_an_update_writes_each_column_that_changed_and_keeps_the_others(
        self, engine: Engine, store: Store
    ) -> None:
        """Whichever of state, deadline and time entered a step changes (each alone, together,
        none), the stored row is the instance the commit carried, read cached and read fresh."""
        for changed in itertools.product((False, True), repeat=3):
            current = propose(engine, f"combination {changed}")
            store.load(current.id)  # cached, as a step's own read leaves it
            new, entry, event = bump(current)
            state, due_at, entered_at = changed
            if state:
                new.state = "submitted"
            if due_at:
                new.due_at = FAR_FUTURE
            if entered_at:
                new.entered_at = current.entered_at + timedelta(seconds=7)
            store.apply(Commit(updates=[(new, 1)], history=[entry], events=[event]))
            assert store.load(current.id) == new, changed
            assert store.load(current.id, fresh=True) == new, changed

    def test_load_returns_a_copy_and_none_for_an_unknown_id(
        self, engine: Engine, store: Store
    ) -> None:
        """Changing a loaded instance changes nothing stored; an unknown id loads as None."""
        started = propose(engine)
        loaded = store.load(started.id)
        assert loaded is not None
        loaded.data["title"] = "changed"
        loaded.state = "closed"
        assert store.load(started.id) == started
        assert store.load(started.id, fresh=True) == started
        assert store.load("no-such-id") is None
        assert store.load("no-such-id", fresh=True) is None

    def test_moments_come_back_as_the_same_aware_instants(
        self, engine: Engine, store: Store, clock: FixedClock
    ) -> None:
        """Datetimes are stored to the microsecond and come back timezone-aware and equal."""
        clock.set(datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC))
        started = propose(engine)
        assigned_at = clock.advance(days=3)
        to_filed(engine, started.id)
        moved = engine.fire(started.id, "assign", OFFICE, {"mode": "sole", "units": ["U1"]})
        stored = store.load(started.id, fresh=True)
        assert stored is not None and moved.due_at is not None and stored.due_at is not None
        assert stored.created_at == datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
        assert stored.entered_at == assigned_at and stored.due_at == moved.due_at
        assert stored.created_at.tzinfo is not None and stored.due_at.tzinfo is not None

    def test_outbox_keeps_commit_order_and_filters_by_instance(
        self, engine: Engine, store: Store
    ) -> None:
        """The outbox lists events in the order they were committed; it can filter one instance."""
        a, b = propose(engine, "a"), propose(engine, "b")
        engine.fire(a.id, "submit", MEMBER, {"category": "economy"})
        engine.fire(b.id, "submit", MEMBER, {"category": "economy"})
        events = store.outbox()
        assert [(e.instance_id, e.seq) for e in events] == [
            (a.id, 1),
            (a.id, 1),
            (b.id, 1),
            (b.id, 1),
            (a.id, 2),
            (a.id, 2),
            (b.id, 2),
            (b.id, 2),
        ]
        assert [e.id for e in store.outbox(a.id)] == [e.id for e in events if e.instance_id == a.id]
        assert events[0].body["type"] == events[0].type
        assert store.outbox("nobody") == []

    def test_outbox_reads_after_a_position_in_pages(self, engine: Engine, store: Store) -> None:
        """Reading after a position pages through the same events, in the same order, as the
        whole outbox; positions only grow, and the head is the last one."""
        assert store.outbox_head() == 0 and store.outbox_since(0, 10) == []
        for title in "abc":
            engine.fire(propose(engine, title).id, "submit", MEMBER, {"category": "economy"})
        pages: list[list[tuple[int, Any]]] = []
        position = 0
        while page := store.outbox_since(position, 4):
            assert len(page) <= 4
            pages.append(page)
            position = page[-1][0]
        read = [row for page in pages for row in page]
        assert [len(page) for page in pages] == [4, 4, 4]
        assert [event.id for _, event in read] == [event.id for event in store.outbox()]
        positions = [p for p, _ in read]
        assert positions == sorted(set(positions)) and store.outbox_head() == positions[-1]
        assert store.outbox_since(positions[-1], 10) == []
        assert [e.id for _, e in store.outbox_since(positions[5], 100)] == [
            e.id for _, e in read[6:]
        ]

    def test_instance_ids_lists_every_instance(self, engine: Engine, store: Store) -> None:
        """instance_ids yields each stored instance once."""
        made = [propose(engine, str(k)).id for k in range(5)]
        assert sorted(store.instance_ids()) == sorted(made)

    # -- queries -----------------------------------------------------------------------------

    def test_query_filters_by_workflow_state_and_org(self, engine: Engine, store: Store) -> None:
        """Each criterion narrows the result; none given lists all, oldest first."""
        a, b = propose(engine, "a"), propose(engine, "b")
        other = engine.start(
            "proposal", {"title": "c", "first_proposer": "x1"}, Actor.of("x1", "member", org="zy")
        )
        engine.fire(b.id, "submit", MEMBER, {"category": "economy"})
        assert ids_of(store, Query()) == [a.id, b.id, other.id]
        assert ids_of(store, Query(workflow="proposal", state="draft")) == [a.id, other.id]
        assert ids_of(store, Query(state="submitted")) == [b.id]
        assert ids_of(store, Query(org="zy")) == [other.id]
        assert ids_of(store, Query(org="gy", state="draft")) == [a.id]
        assert ids_of(store, Query(workflow="no_such_workflow")) == []
        assert store.query(Query(state="submitted"))[0] == store.load(b.id, fresh=True)

    def test_query_filters_by_flags_unit_and_parent(self, engine: Engine, store: Store) -> None:
        """final, overdue, unit and parent_id each select the instances that have them."""
        done = to_closed(engine, propose(engine, "done").id)
        [child] = engine.children(done.id)  # the handling by unit U1, final once it replied
        open_one = propose(engine, "open")
        assert ids_of(store, Query(final=True)) == [done.id, child.id]
        assert ids_of(store, Query(final=False)) == [open_one.id]
        assert ids_of(store, Query(overdue=False)) == [done.id, child.id, open_one.id]
        assert ids_of(store, Query(overdue=True)) == []
        assert ids_of(store, Query(unit="U1")) == [child.id]
        assert ids_of(store, Query(parent_id=done.id)) == [child.id]
        assert ids_of(store, Query(workflow="proposal_handling", final=True)) == [child.id]

    @pytest.mark.parametrize(
        ("field", "value", "expected"),
        [
            ("title", "关于养老的建议", ["p0001"]),
            ("category", "society", ["p0002"]),
            ("key_proposal", True, ["p0002"]),
            ("key_proposal", False, ["p0001", "p0003"]),
            ("rehandle_count", 0, ["p0001", "p0002", "p0003"]),
            ("co_proposers", [], ["p0001", "p0002", "p0003"]),
            ("number", None, ["p0001", "p0003"]),
            ("number", "N-p0002", ["p0002"]),
            ("title", "no such title", []),
        ],
    )
    def test_query_filters_by_a_data_field(
        self, engine: Engine, store: Store, field: str, value: Any, expected: list[str]
    ) -> None:
        """A data field equals the value as JSON: string, bool, number, list; None = unset."""
        propose(engine, "关于养老的建议")
        second = propose(engine, "second")
        to_filed(engine, second.id)
        engine.fire(second.id, "flag_key", CHAIR, {"lead_leader": "L"})
        propose(engine, "third")
        found = [i.id for i in store.query(Query(field=field, value=value))]
        assert found == expected

    def test_query_pages_in_creation_order_with_a_keyset_cursor(
        self, engine: Engine, store: Store, clock: FixedClock
    ) -> None:
        """Pages of ``limit`` follow (created_at, id), ties broken by id; no row comes twice."""
        made = []
        for k in range(7):
            if k % 3 == 0:
                clock.advance(seconds=1)  # several instances share each moment
            made.append(propose(engine, f"t{k}").id)
        seen: list[str] = []
        after = None
        while True:
            page = store.query(Query(workflow="proposal", limit=3, after=after))
            seen += [i.id for i in page]
            if len(page) < 3:
                break
            after = (iso(page[-1].created_at), page[-1].id)
        assert seen == made
        first = store.query(Query(limit=2))
        assert [i.id for i in first] == made[:2]
        cursor = (iso(first[-1].created_at), first[-1].id)
        assert [i.id for i in store.query(Query(limit=2, after=cursor, state="draft"))] == made[2:4]

    # -- timers ------------------------------------------------------------------------------

    def timers_for(self, engine: Engine, store: Store) -> tuple[Instance, Instance, datetime]:
        a, b = propose(engine, "a"), propose(engine, "b")
        return a, b, a.created_at

    def test_reader_principals_are_replaced_with_each_step_and_filter_queries(
        self, engine: Engine, store: Store
    ) -> None:
        """The readers a commit names replace the stored ones; a query with principals lists
        only instances one of them may read, filtered before the limit."""
        draft = propose(engine, "草稿")
        others = [propose(engine, f"提案{n}", by=OTHER_MEMBER) for n in range(3)]
        assert store.readers([draft.id])[draft.id] == {"a:m1": 2}
        mine = Query(workflow="proposal", readers=frozenset({"*", "a:m1", "r:member"}), limit=1)
        assert [i.id for i in store.query(mine)] == [draft.id]
        engine.fire(draft.id, "submit", MEMBER, {"category": "society", "is_public": True})
        levels = store.readers([draft.id, *(o.id for o in others)])
        assert levels[draft.id]["*"] == 1 and levels[draft.id]["r:proposal_committee"] == 3
        assert all(levels[o.id] == {"a:m2": 2} for o in others)
        anyone = Query(workflow="proposal", readers=frozenset({"*"}))
        assert [i.id for i in store.query(anyone)] == [draft.id]
        assert store.readers(["nope"]) == {}

    @pytest.mark.parametrize(
        "few", [True, False], ids=["read-along-readers", "read-along-instances"]
    )
    def test_a_scoped_read_lists_what_its_principals_read_at_their_highest_level(
        self,
        engine: Engine,
        store: Store,
        clock: FixedClock,
        monkeypatch: pytest.MonkeyPatch,
        few: bool,
    ) -> None:
        """``query_read``, for every set of four principals and two page sizes: the instances
        one of them reads, in page order, each with the highest level they hold on it; the
        instances none of them reads neither listed nor counted against the limit. A SQL
        store reads a page along the reader rows of principals that read few instances, else
        along the instances (``few`` False: every principal counts as reading many)."""
        if not few:
            monkeypatch.setattr(sql_readers, "FEW", 0)
            monkeypatch.setattr(sql_readers, "FEW_FILTERED", 0)
        made = []
        for k in range(8):
            clock.advance(seconds=1)
            made.append(propose(engine, f"t{k}").id)
        universe = ("*", "a:m9", "r:clerk", "u:handling_unit:u1")
        held = {
            iid: {p: 1 + (k + j) % 3 for j, p in enumerate(universe) if (k * 5 + 3) >> j & 1}
            for k, iid in enumerate(made)
        }
        store.apply(Commit(readers=held))
        for n in range(1, 1 << len(universe)):
            mine = frozenset(p for j, p in enumerate(universe) if n >> j & 1)
            expected = [
                (iid, max(level for p, level in held[iid].items() if p in mine))
                for iid in made
                if mine & held[iid].keys()
            ]
            for limit in (3, 50):
                seen: list[tuple[str, int]] = []
                after = None
                while True:
                    page = store.query_read(Query(limit=limit, after=after, readers=mine))
                    seen += [(i.id, level) for i, level in page]
                    if len(page) < limit:
                        break
                    after = (iso(page[-1][0].created_at), page[-1][0].id)
                assert seen == expected, (sorted(mine), limit)

    def test_timers_come_due_earliest_first_up_to_the_limit(
        self, engine: Engine, store: Store
    ) -> None:
        """due_timers lists timers due at or before now, earliest first, at most ``limit``."""
        a, b, t0 = self.timers_for(engine, store)
        timers = [
            TimerRecord(a.id, "timer", "close_without_evaluation", t0 + timedelta(days=d), 1, "gy")
            for d in (3, 1, 2)
        ]
        timers.append(
            TimerRecord(b.id, "deadline", "mark_overdue", t0 + timedelta(days=10), 1, "gy")
        )
        store.apply(Commit(timers=timers))
        assert store.due_timers(t0) == []
        assert store.due_timers(t0 + timedelta(days=2)) == [timers[1], timers[2]]
        assert store.due_timers(t0 + timedelta(days=30), limit=2) == [timers[1], timers[2]]
        assert store.due_timers(t0 + timedelta(days=30)) == [
            timers[1],
            timers[2],
            timers[0],
            timers[3],
        ]

    def test_clear_timers_forgets_an_instances_timers_before_adding(
        self, engine: Engine, store: Store
    ) -> None:
        """clear_timers deletes the named instances' timers, then the commit's timers are added."""
        a, b, t0 = self.timers_for(engine, store)
        old = TimerRecord(a.id, "timer", "t_old", t0, 1, "gy")
        kept = TimerRecord(b.id, "timer", "t_b", t0, 1, "gy")
        store.apply(Commit(timers=[old, kept]))
        new = TimerRecord(a.id, "timer", "t_new", t0 + timedelta(hours=1), 2, "gy")
        store.apply(Commit(timers=[new], clear_timers=[a.id]))
        assert store.due_timers(FAR_FUTURE) == [kept, new]

    def test_delete_timer_forgets_only_that_timer(self, engine: Engine, store: Store) -> None:
        """delete_timer removes one matching timer and leaves the others."""
        a, _, t0 = self.timers_for(engine, store)
        first = TimerRecord(a.id, "timer", "t1", t0, 1, "gy")
        twin = TimerRecord(a.id, "timer", "t1", t0, 1, "gy")
        other = TimerRecord(a.id, "timer", "t2", t0, 1, "gy")
        store.apply(Commit(timers=[first, twin, other]))
        store.delete_timer(first)
        assert store.due_timers(FAR_FUTURE) == [twin, other]
        store.delete_timer(TimerRecord(a.id, "timer", "t1", t0, 9, "gy"))  # no such: no effect
        assert store.due_timers(FAR_FUTURE) == [twin, other]

    def test_a_consumed_timer_is_deleted_with_its_commit_and_only_once(
        self, engine: Engine, store: Store
    ) -> None:
        """A commit consuming a timer deletes it; consuming it again conflicts, writing nothing."""
        a, _, t0 = self.timers_for(engine, store)
        timer = TimerRecord(a.id, "timer", "close_without_evaluation", t0, 1, "gy")
        store.apply(Commit(timers=[timer]))
        first = step_commit(a)
        first.consume_timers.append(timer)
        store.apply(first)
        assert store.due_timers(FAR_FUTURE) == []
        current = store.load(a.id, fresh=True)
        assert current is not None and current.version == 2
        second = step_commit(current)
        second.consume_timers.append(timer)
        before = (self.counts(store), store.load(a.id, fresh=True))
        with pytest.raises(ConcurrencyConflict) as caught:
            store.apply(second)
        assert caught.value.case is ConflictCase.TIMER_TAKEN
        assert caught.value.instance_id == a.id
        assert (self.counts(store), store.load(a.id, fresh=True)) == before

    def test_touch_counts_child_steps_on_the_parent_and_refuses_a_stale_count(
        self, engine: Engine, store: Store
    ) -> None:
        """touch adds one to children_version if it is still the count read; updates keep it."""
        parent, child = propose(engine, "parent"), propose(engine, "child")
        store.apply(Commit(touch=[(parent.id, 0)]))
        moved = step_commit(parent)
        moved.updates[0][0].children_version = 99  # an update never writes the count
        store.apply(moved)
        for loaded in (store.load(parent.id), store.load(parent.id, fresh=True)):
            assert loaded is not None and (loaded.version, loaded.children_version) == (2, 1)
        stale = step_commit(child)
        stale.touch.append((parent.id, 0))
        before = (self.counts(store), store.load(child.id, fresh=True))
        with pytest.raises(ConcurrencyConflict) as caught:
            store.apply(stale)
        assert caught.value.case is ConflictCase.CHILDREN_CHANGED
        assert (caught.value.instance_id, caught.value.expected, caught.value.actual) == (
            parent.id, 0, 1)  # fmt: skip
        assert (self.counts(store), store.load(child.id, fresh=True)) == before
        store.apply(Commit(touch=[(parent.id, 1)]))
        store.apply(Commit(touch=[(parent.id, 2)]))
        reloaded = store.load(parent.id)
        assert reloaded is not None and reloaded.children_version == 3

    # -- definitions -------------------------------------------------------------------------

    def test_definitions_are_saved_once_and_loaded_by_hash(self, store: Store) -> None:
        """A definition is kept under its hash; saving the hash again keeps the first body."""
        store.save_definition("h1", "proposal", 1, '{"id": "proposal"}')
        store.save_definition("h1", "proposal", 1, '{"id": "changed"}')
        store.save_definition("h2", "proposal", 2, '{"id": "proposal", "v": 2}')
        assert store.load_definition("h1") == '{"id": "proposal"}'
        assert store.load_definition("h2") == '{"id": "proposal", "v": 2}'
        assert store.load_definition("h3") is None

    def test_engine_saves_the_definition_an_instance_is_pinned_to(
        self, engine: Engine, store: Store
    ) -> None:
        """The first start saves the definition's JSON under the hash the instance pins."""
        started = propose(engine)
        body = store.load_definition(started.definition_hash)
        assert body is not None and '"id":"proposal"' in body


@contextmanager
def sql_connection(url: str) -> Iterator[tuple[Any, str]]:
    """A bare driver connection to a store's database (autocommit) and its placeholder."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        conn: Any = sqlite3.connect(str(parsed.database), isolation_level=None)
        mark = "?"
    else:
        plain = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = psycopg.connect(plain, autocommit=True)
        mark = "%s"
    try:
        yield conn, mark
    finally:
        conn.close()


def table_counts(url: str) -> dict[str, int]:
    with sql_connection(url) as (conn, _):
        return {
            name: conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
            for name in sorted(SQLModel.metadata.tables)
        }


class SqlStoreContract(StoreContract):
    """The contract, plus what a database keeps. Subclasses provide the ``url`` fixture."""

    @pytest.fixture
    def url(self) -> str:
        raise NotImplementedError  # each backend's module provides an empty database

    @pytest.fixture
    def store(self, url: str) -> Iterator[SQLStore]:
        with open_store(url) as store:
            yield store

    def counts(self, store: Store) -> dict[str, int]:
        """Rows in every table of the schema, counted with plain SQL."""
        assert isinstance(store, SQLStore)
        return table_counts(store.url.render_as_string(hide_password=False))

    def test_history_survives_reopening_the_store(
        self, url: str, registry: Registry, clock: FixedClock
    ) -> None:
        """What one store wrote, a store opened later on the same database reads and verifies."""
        with open_store(url) as first:
            engine = Engine(first, registry, clock)
            iid = to_closed(engine, propose(engine).id).id
            written = first.history(iid), first.load(iid, fresh=True), first.outbox()
        with open_store(url) as second:
            assert (second.history(iid), second.load(iid), second.outbox()) == written
            assert Engine(second, registry, clock).verify() == []

    def test_migrated_schema_matches_the_models(self, store: SQLStore) -> None:
        """alembic finds no difference between the migrated database and the SQLModel tables."""
        engine = sa_engine(store.url.render_as_string(hide_password=False))
        try:
            with engine.connect() as conn:
                assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []
        finally:
            engine.dispose()

    def test_fault_after_the_instance_update_leaves_the_database_unchanged(
        self, engine: Engine, store: SQLStore, url: str
    ) -> None:
        """A failure in the middle of a commit rolls all of it back, cache included."""
        started = propose(engine)
        before = (table_counts(url), store.load(started.id, fresh=True), store.history(started.id))

        def fail(point: str) -> None:
            raise RuntimeError(f"injected fault at {point}")

        store.fault_hook = fail
        with pytest.raises(RuntimeError, match="after_instance_update"):
            engine.fire(started.id, "submit", MEMBER, {"category": "economy"})
        store.fault_hook = None
        assert (
            table_counts(url),
            store.load(started.id, fresh=True),
            store.history(started.id),
        ) == before
        assert store.load(started.id) == before[1]
        moved = engine.fire(started.id, "submit", MEMBER, {"category": "economy"})
        assert moved.version == 2 and engine.verify() == []

    def test_another_stores_write_is_seen_fresh_and_never_overwritten(
        self, engine: Engine, store: SQLStore, url: str, registry: Registry, clock: FixedClock
    ) -> None:
        """A second store's write is seen by a fresh load; a stale cache cannot overwrite it."""
        started = propose(engine)
        assert store.load(started.id) is not None  # cached at version 1
        with open_store(url) as other:
            Engine(other, registry, clock).fire(
                started.id, "submit", MEMBER, {"category": "economy"}
            )
        fresh = store.load(started.id, fresh=True)
        assert fresh is not None and fresh.version == 2
        with pytest.raises(ConcurrencyConflict):
            engine.fire(started.id, "start_review", COMMITTEE, expected_version=1)
        moved = engine.fire(started.id, "start_review", COMMITTEE)
        assert moved.version == 3 and engine.verify() == []

    def test_an_instance_another_writer_moves_is_read_fresh_after_a_conflict(
        self, engine: Engine, store: SQLStore, url: str, registry: Registry, clock: FixedClock
    ) -> None:
        """Once a step of this store lost a race to another store, instances are read fresh for
        a while: the next step is judged on the other store's version, not the cached one."""
        started = propose(engine)
        engine.fire(started.id, "submit", MEMBER, {"category": "economy"})  # cached at 2
        with open_store(url) as other:
            elsewhere = Engine(other, registry, clock)
            elsewhere.fire(started.id, "start_review", COMMITTEE)
            moved = engine.fire(started.id, "return_for_revision", COMMITTEE, reason="补充材料")
            assert moved.version == 4  # judged on version 2, lost the race, judged on 3
            elsewhere.fire(started.id, "submit", MEMBER, {"category": "economy"})
        seen = store.load(started.id)  # not the version 4 this store cached
        assert seen is not None and (seen.version, seen.state) == (5, "submitted")
        assert engine.verify() == []

    def test_a_reader_of_the_stored_instance_is_not_refused_on_a_stale_cached_one(
        self, engine: Engine, store: SQLStore, url: str, registry: Registry, clock: FixedClock
    ) -> None:
        """This store cached a draft (which the committee may not read); another store
        submitted it. The committee's step and read are judged on the stored instance."""
        started = propose(engine)
        assert store.load(started.id) is not None  # a draft, cached at version 1
        with open_store(url) as other:
            Engine(other, registry, clock).fire(
                started.id, "submit", MEMBER, {"category": "economy"}
            )
        assert engine.get(started.id, actor=COMMITTEE).version == 2
        moved = engine.fire(started.id, "start_review", COMMITTEE)
        assert (moved.version, moved.state) == (3, "under_review")

    def test_readers_are_served_at_the_version_of_the_cached_row(
        self, engine: Engine, store: SQLStore, url: str, registry: Registry, clock: FixedClock
    ) -> None:
        """The readers a store committed are served with its cached row; when another store
        moves the instance (submitting a draft opens it to the org), a fresh load brings the
        new readers, and a rebuild in place is read from the database again."""
        started = propose(engine)
        draft = store.readers([started.id])[started.id]
        assert "*" not in draft and draft == store.readers([started.id])[started.id]
        with open_store(url) as other:
            Engine(other, registry, clock).fire(
                started.id, "submit", MEMBER, {"category": "economy"}
            )
            submitted = other.readers([started.id])[started.id]
        assert submitted["*"] >= 1
        assert store.readers([started.id])[started.id] == draft  # as of the cached version 1
        assert store.load(started.id, fresh=True).version == 2
        assert store.readers([started.id])[started.id] == submitted
        moved = engine.fire(started.id, "start_review", COMMITTEE)  # readers kept, now cached
        assert store.readers([started.id])[started.id] == submitted
        store.apply(Commit(readers={started.id: {"r:proposal_committee": 3}}))
        assert store.readers([started.id]) == {started.id: {"r:proposal_committee": 3}}
        assert moved.version == 3 and engine.verify() == []

    def test_a_second_row_for_a_stored_seq_raises_conflict(
        self, engine: Engine, store: SQLStore, url: str
    ) -> None:
        """A history row whose (instance, seq) exists is refused as a conflict, writing nothing."""
        started = propose(engine)
        _, entry, _ = bump(started, seq=1)
        before = table_counts(url)
        with pytest.raises(ConcurrencyConflict) as caught:
            store.apply(Commit(history=[entry]))
        assert (caught.value.instance_id, caught.value.actual) == (started.id, 1)
        assert table_counts(url) == before

    def test_a_row_for_an_unknown_instance_raises_store_error(
        self, engine: Engine, store: SQLStore, url: str
    ) -> None:
        """A broken reference (a timer of no instance) is a StoreError with the driver's reason."""
        propose(engine)
        before = table_counts(url)
        timer = TimerRecord("no-such-instance", "timer", "t", FAR_FUTURE, 1, "gy")
        with pytest.raises(StoreError) as caught:
            store.apply(Commit(timers=[timer]))
        assert not isinstance(caught.value, ConcurrencyConflict)
        assert caught.value.code == "store-error"
        assert "foreign key" in caught.value.message.lower()
        assert table_counts(url) == before
