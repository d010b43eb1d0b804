"""Migrations, suspension and repair over HTTP, for the ``admin`` role of an org: the same
reports and refusals as the Python API, as problem+json, on the admin's own org only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from xieshang import Actor, Engine, FixedClock
from xieshang.adapters.http import MemoryTokenStore, create_app
from xieshang.adapters.http.testing import serve_in_thread
from xieshang.adapters.sql import open_store
from xieshang.workflows import load_registry

FIXTURES = Path(__file__).parent / "fixtures" / "versions"
ORG = "guiyang"
MEMBER = Actor.of("m1", "member", org=ORG)
OFFICE = Actor.of("o1", "office", org=ORG)
PROBLEM = "application/problem+json"


@pytest.fixture
def served(sql_url: str) -> Iterator[tuple[Engine, Any]]:
    clock = FixedClock(datetime(2024, 3, 1, 9, tzinfo=UTC))
    tokens = MemoryTokenStore()
    with open_store(sql_url) as store:
        engine = Engine(store, load_registry([FIXTURES]), clock, pins={ORG: {"suggestion": 1}})
        with serve_in_thread(create_app(engine, tokens)) as base:

            def client(actor: str) -> httpx.Client:
                token = tokens.create(Actor.parse(actor))
                return httpx.Client(
                    base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10
                )

            yield engine, client


def test_an_admin_migrates_its_orgs_instances(served: tuple[Engine, Any]) -> None:
    """A dry run changes nothing; the real run moves the guiyang instance only (zunyi's stays:
    an admin acts on its own org)."""
    engine, client = served
    mine = engine.start("suggestion", {"title": "社区养老"}, MEMBER).id
    engine.fire(mine, "accept", OFFICE)
    other_member = Actor.of("m9", "member", org="zunyi")
    engine.pins["zunyi"] = {"suggestion": 1}
    theirs = engine.start("suggestion", {"title": "公交"}, other_member).id
    body = {
        "workflow": "suggestion",
        "to_version": 2,
        "map": {"submitted": "submitted", "reviewing": "under_review"},
        "set": {"category": "'culture'"},
        "dry_run": True,
    }
    with client("a1:admin@guiyang") as admin:
        dry = admin.post("/admin/migrations", json=body)
        assert dry.status_code == 200, dry.text
        assert [
            (p["instance_id"], p["target"], p["migrated"]) for p in dry.json()["instances"]
        ] == [(mine, "under_review", False)]
        assert engine.get(mine).workflow_version == 1
        done = admin.post("/admin/migrations", json={**body, "dry_run": False, "reason": "第二版"})
        assert (done.json()["migrated"], done.json()["refused"]) == (1, 0)
    assert engine.get(mine).workflow_version == 2 and engine.get(theirs).workflow_version == 1
    assert engine.get(mine).data["category"] == "culture"
    assert engine.history(mine)[-1].reason == "第二版"
    assert engine.verify() == []


def test_refusals_are_problems(served: tuple[Engine, Any]) -> None:
    """Not an admin: 403 naming the role; a version not loaded: 404 naming those loaded; a
    state the new version lacks: 422; a command on a suspended instance: 409 naming resume."""
    engine, client = served
    iid = engine.start("suggestion", {"title": "路灯"}, MEMBER).id
    body = {"workflow": "suggestion", "to_version": 2}
    with client("o1:office@guiyang") as office:
        r = office.post("/admin/migrations", json=body)
        assert (r.status_code, r.headers["content-type"]) == (403, PROBLEM)
        assert r.json()["allowed"] == ["admin"]
    with client("a1:admin@guiyang") as admin:
        r = admin.post("/admin/migrations", json={**body, "to_version": 5})
        assert r.status_code == 404
        assert r.json()["detail"] == (
            "no workflow 'suggestion v5'; known: suggestion v1, suggestion v2"
        )
        r = admin.post("/admin/migrations", json={**body, "map": {"submitted": "gone"}})
        assert r.status_code == 422 and "its states: submitted, under_review" in r.json()["detail"]
        r = admin.post(f"/admin/instances/{iid}/suspend", json={"reason": "核查"})
        assert (
            r.status_code == 200 and r.json()["suspended_at"] == "2024-03-01T09:00:00.000000+00:00"
        )
        r = admin.post(f"/admin/instances/{iid}/state", json={"state": "reviewing", "reason": "x"})
        assert r.status_code == 409 and r.json()["allowed"] == ["resume"]
        r = admin.post(f"/admin/instances/{iid}/resume", json={"reason": "核查完毕"})
        assert r.status_code == 200 and r.json()["suspended_at"] is None
        r = admin.post(f"/admin/instances/{iid}/state", json={"state": "reviewing", "reason": "x"})
        assert (r.status_code, r.json()["state"]) == (200, "reviewing")
    with client("a2:admin@zunyi") as stranger:
        r = stranger.post(f"/admin/instances/{iid}/suspend", json={"reason": "x"})
        assert r.status_code == 404
    assert [row.trigger for row in engine.history(iid)] == [
        "start",
        "suspend",
        "resume",
        "set_state",
    ]
    assert engine.verify() == []
