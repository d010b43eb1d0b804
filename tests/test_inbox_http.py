"""``GET /inbox`` through real HTTP (uvicorn, a SQLite file, httpx): the caller's inbox in pages
shaped like the instance list plus the triggers it may fire; and an instance the caller may not
read is answered by fire and available exactly as one that does not exist."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_inbox import bulk_tasks, task_registry

from xieshang import Actor, Engine, FixedClock
from xieshang.adapters.http import create_app
from xieshang.adapters.http.commands import token_store_for
from xieshang.adapters.http.testing import serve_in_thread
from xieshang.adapters.sql import open_store
from xieshang.workflows import bundled

PROBLEM = "application/problem+json"
TASKS = 60


@dataclass
class Served:
    url: str
    engine: Engine
    clients: dict[str, httpx.Client]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The bundled workflows and the test's task workflow, 60 tasks, and a client per actor."""
    from test_inbox import NOW

    url = f"sqlite:///{Path(tmp_path_factory.mktemp('inbox')) / 'xieshang.db'}"
    registry = bundled()
    registry.add(task_registry().get("task"))
    tokens = token_store_for(url)
    with open_store(url) as store:
        engine = Engine(store, registry, FixedClock(NOW))
        bulk_tasks(engine, TASKS)
        actors = {
            "clerk": "c1:clerk@city/u1",
            "chief": "b1:chief@city",
            "member": "m1:member@city",
            "other": "m2:member@city",
        }
        with serve_in_thread(create_app(engine, tokens)) as base:
            clients = {
                name: httpx.Client(
                    base_url=base,
                    headers={"Authorization": f"Bearer {tokens.create(Actor.parse(who))}"},
                    timeout=10,
                )
                for name, who in actors.items()
            }
            yield Served(base, engine, clients)
            for client in clients.values():
                client.close()


def _problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["code"] == code
    return body


def test_the_inbox_pages_like_the_instance_list_with_the_triggers(served: Served) -> None:
    """The clerk of u1 walks its inbox five at a time along next_cursor: the open tasks of u1
    whose amount is not a multiple of 3, each the instance as GET /instances/{id} gives it plus
    may_fire; every page but the last is full."""
    clerk = served.clients["clerk"]
    seen: list[dict[str, Any]] = []
    sizes = []
    params: dict[str, Any] = {"limit": 5}
    while True:
        r = clerk.get("/inbox", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert set(page) == {"items", "next_cursor"}
        seen += page["items"]
        sizes.append(len(page["items"]))
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    expected = [f"t{k:05d}" for k in range(TASKS) if k % 5 == 1 and (k % 7) % 3 != 0]
    assert [i["id"] for i in seen] == expected
    assert expected == ["t00001", "t00011", "t00016", "t00026", "t00036", "t00046", "t00051"]
    assert sizes == [5, 2]
    first = clerk.get(f"/instances/{seen[0]['id']}").json()
    assert seen[0] == {**first, "may_fire": ["check"]}


def test_the_inbox_filters_by_workflow_states_unit_and_overdue(served: Served) -> None:
    """workflow, state (repeated: any of them), unit and overdue narrow the inbox."""
    chief = served.clients["chief"]
    served.engine.fire("t00002", "note", Actor.of("b9", "chief", org="city"))

    def ids(**params: Any) -> list[str]:
        r = chief.get("/inbox", params={"limit": 500, **params})
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    assert len(ids()) == TASKS
    assert ids(state="checked") == ["t00002"]
    assert len(ids(state=["open", "checked"], workflow="task")) == TASKS
    assert ids(workflow="task", state="checked", overdue="false") == ["t00002"]
    assert ids(overdue="true") == []
    assert ids(unit="u1") == []  # a task has no unit of its own: its units are data
    items = chief.get("/inbox", params={"state": "checked"}).json()["items"]
    assert items[0]["may_fire"] == ["note", "approve"]


def test_bad_inbox_parameters_are_422_naming_what_is_allowed(served: Served) -> None:
    """A cursor no page gave, a workflow the deployment does not run, and a state the workflow
    does not have are refused with 422, naming what would be allowed."""
    clerk = served.clients["clerk"]
    _problem(clerk.get("/inbox", params={"cursor": "page-two"}), 422, "invalid-cursor")
    _problem(
        clerk.get("/inbox", params={"cursor": "2024-13-99T99:99:99|t1"}), 422, "invalid-cursor"
    )
    body = _problem(clerk.get("/inbox", params={"workflow": "tasks"}), 422, "usage")
    assert "task" in body["allowed"] and "'tasks'" in body["detail"]
    body = _problem(
        clerk.get("/inbox", params={"workflow": "task", "state": ["open", "shut"]}), 422, "usage"
    )
    assert body["allowed"] == ["open", "checked", "done"]
    assert "'shut'" in body["detail"]
    _problem(httpx.get(f"{served.url}/inbox"), 401, "unauthenticated")


def test_an_unreadable_instance_is_answered_as_a_missing_one(served: Served) -> None:
    """m1's draft proposal is read by m1 only: m2's fire and available on it get the 404 a
    missing instance gets, the same body but for the id, and nothing is written."""
    member, other = served.clients["member"], served.clients["other"]
    r = member.post(
        "/instances",
        json={"workflow": "proposal", "data": {"title": "t", "first_proposer": "m1"}},
    )
    assert r.status_code == 201, r.text
    iid = r.json()["id"]
    for method, path, body in (
        ("POST", "/instances/{}/fire", {"trigger": "submit", "payload": {"category": "economy"}}),
        ("GET", "/instances/{}/available", None),
        ("GET", "/instances/{}", None),
    ):
        hidden = other.request(method, path.format(iid), json=body)
        missing = other.request(method, path.format("nowhere"), json=body)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.headers["content-type"] == missing.headers["content-type"]
        assert hidden.json() == {
            k: v.replace("nowhere", iid) if isinstance(v, str) else v
            for k, v in missing.json().items()
        }
    assert served.engine.get(iid).version == 1
    assert [i["id"] for i in other.get("/inbox").json()["items"]] == []
    mine = member.get("/inbox", params={"workflow": "proposal"}).json()["items"]
    assert [(i["id"], "submit" in i["may_fire"]) for i in mine] == [(iid, True)]
