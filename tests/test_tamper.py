"""Tampering with stored history in plain SQL is found by verify, naming instance, row and kind."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from store_contract import CHAIR, propose, sql_connection, to_filed

from xieshang import Engine, FixedClock, Registry
from xieshang.adapters.sql import open_store


@pytest.fixture
def engine(sql_url: str, registry: Registry, clock: FixedClock) -> Iterator[Engine]:
    with open_store(sql_url) as store:
        yield Engine(store, registry, clock)


def two_filed(engine: Engine) -> tuple[str, str]:
    """Two proposals of four history rows each; the first is the one tampered with."""
    target, bystander = propose(engine, "被改的").id, propose(engine, "旁观的").id
    for iid in (target, bystander):
        to_filed(engine, iid)
    assert engine.verify() == []
    return target, bystander


def tamper(url: str, *statements: tuple[str, tuple[object, ...]]) -> None:
    with sql_connection(url) as (conn, mark):
        for sql, params in statements:
            conn.execute(sql.replace("?", mark), params)


def test_a_changed_payload_is_found_as_changed(engine: Engine, sql_url: str) -> None:
    """A row whose payload was edited no longer matches its hash: kind 'changed' at that seq."""
    target, _ = two_filed(engine)
    forged = json.dumps({"category": "politics"})
    tamper(
        sql_url,
        ("UPDATE history SET payload = ? WHERE instance_id = ? AND seq = 2", (forged, target)),
    )
    [problem] = engine.verify()
    assert (problem["instance_id"], problem["seq"], problem["kind"]) == (target, 2, "changed")


def test_a_changed_actor_is_found_as_changed(engine: Engine, sql_url: str) -> None:
    """Rewriting who acted is a change like any other."""
    target, _ = two_filed(engine)
    tamper(
        sql_url,
        (
            "UPDATE history SET actor = ? WHERE instance_id = ? AND seq = 3",
            (json.dumps({"id": "someone-else", "roles": ["proposal_committee"]}), target),
        ),
    )
    assert [(p["instance_id"], p["seq"], p["kind"]) for p in engine.verify()] == [
        (target, 3, "changed")
    ]


def test_a_deleted_row_is_found_as_removed(engine: Engine, sql_url: str) -> None:
    """A row deleted from the middle leaves a gap: kind 'removed' at the missing seq."""
    target, _ = two_filed(engine)
    tamper(sql_url, ("DELETE FROM history WHERE instance_id = ? AND seq = 2", (target,)))
    [problem] = engine.verify()
    assert (problem["instance_id"], problem["seq"], problem["kind"]) == (target, 2, "removed")


def test_a_deleted_last_row_is_found_as_removed(engine: Engine, sql_url: str) -> None:
    """Deleting the newest row is caught by the instance's version and head hash."""
    target, _ = two_filed(engine)
    tamper(sql_url, ("DELETE FROM history WHERE instance_id = ? AND seq = 4", (target,)))
    [problem] = engine.verify()
    assert (problem["instance_id"], problem["seq"], problem["kind"]) == (target, 4, "removed")


def test_two_swapped_rows_are_found_as_reordered(engine: Engine, sql_url: str) -> None:
    """Swapping two rows' seq breaks the chain where the first of them now stands."""
    target, _ = two_filed(engine)
    where = "WHERE instance_id = ? AND seq = ?"
    tamper(
        sql_url,
        (f"UPDATE history SET seq = -1 {where}", (target, 2)),
        (f"UPDATE history SET seq = 2 {where}", (target, 3)),
        (f"UPDATE history SET seq = 3 {where}", (target, -1)),
    )
    [problem] = engine.verify()
    assert (problem["instance_id"], problem["seq"], problem["kind"]) == (target, 2, "reordered")


def test_only_the_tampered_instance_is_named(engine: Engine, sql_url: str) -> None:
    """Only the tampered instance is named; its neighbour still verifies."""
    target, bystander = two_filed(engine)
    engine.fire(bystander, "flag_key", CHAIR, {"lead_leader": "主席"})
    tamper(
        sql_url,
        (
            "UPDATE history SET reason = ? WHERE instance_id = ? AND seq = 2",
            ("inserted later", target),
        ),
    )
    assert [p["instance_id"] for p in engine.verify()] == [target]
    assert engine.verify(bystander) == []
