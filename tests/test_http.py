"""The HTTP API through real HTTP: uvicorn on 127.0.0.1, a SQLite file store, httpx clients."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from xieshang.adapters.http import MemoryTokenStore, TokenStore, create_app, register_cli
from xieshang.adapters.http.commands import token_store_for
from xieshang.adapters.http.problems import status_of
from xieshang.adapters.http.testing import serve_in_thread
from xieshang.adapters.memory import MemoryStore
from xieshang.adapters.sql.store import open_store
from xieshang.errors import (
    CalendarError,
    ConcurrencyConflict,
    DefinitionError,
    Forbidden,
    InvalidPayload,
    NotFound,
    StoreUnavailable,
    TransitionNotAllowed,
    UnknownTrigger,
    XieshangError,
)
from xieshang.ports import Store
from xieshang.records import Actor
from xieshang.runtime import Engine
from xieshang.workflows import bundled

PROBLEM = "application/problem+json"


_Unavailable = StoreUnavailable  # what a store raises when its database does not answer


@dataclass
class Api:
    url: str
    engine: Engine
    tokens: TokenStore
    database_url: str | None
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, actor: str | None = None, token: str | None = None) -> httpx.Client:
        """A client with the token of ``actor`` (or ``token``); closed with the server."""
        if actor is not None:
            token = self.tokens.create(Actor.parse(actor))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.Client(base_url=self.url, headers=headers, timeout=10)
        self.clients.append(client)
        return client


def _stores(directory: Path) -> tuple[Store, TokenStore, str | None]:
    url = f"sqlite:///{directory / 'xieshang.db'}"
    return open_store(url), token_store_for(url), url


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    store, tokens, url = _stores(tmp_path_factory.mktemp("http"))
    engine = Engine(store, bundled())
    with serve_in_thread(create_app(engine, tokens, max_body_bytes=100_000)) as base:
        served = Api(base, engine, tokens, url)
        yield served
        for client in served.clients:
            client.close()
    for closable in (store, tokens):
        close = getattr(closable, "close", None)
        if callable(close):
            close()


@dataclass
class People:
    member: httpx.Client
    committee: httpx.Client
    supervision: httpx.Client
    unit: httpx.Client
    auditor: httpx.Client
    other_org: httpx.Client


@pytest.fixture(scope="module")
def people(api: Api) -> People:
    return People(
        member=api.client("m1:member@guiyang"),
        committee=api.client("c1:proposal_committee@guiyang"),
        supervision=api.client("s1:supervision_office@guiyang"),
        unit=api.client("h1:handling_unit@guiyang/water_bureau"),
        auditor=api.client("a1:auditor@guiyang"),
        other_org=api.client("m1:member,proposal_committee,admin@zhenyuan"),
    )


def _start(client: httpx.Client, proposer: str = "m1", **headers: str) -> dict[str, Any]:
    r = client.post(
        "/instances",
        json={
            "workflow": "proposal",
            "data": {"title": "关于加强社区养老服务的提案", "first_proposer": proposer},
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _fire(
    client: httpx.Client,
    iid: str,
    trigger: str,
    payload: dict[str, Any] | None = None,
    reason: str | None = None,
    **headers: str,
) -> httpx.Response:
    return client.post(
        f"/instances/{iid}/fire",
        json={"trigger": trigger, "payload": payload or {}, "reason": reason},
        headers=headers,
    )


def _problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["code"] == code
    assert body["type"] == f"/problems/{code}" and body["title"] and body["detail"]
    assert "Traceback" not in r.text
    return body


def _filed(people: People) -> str:
    iid = _start(people.member)["id"]
    assert _fire(people.member, iid, "submit", {"category": "society"}).status_code == 200
    assert _fire(people.committee, iid, "start_review").status_code == 200
    assert _fire(people.committee, iid, "file", {"number": "0001"}).status_code == 200
    return iid


# -- the lifecycle -----------------------------------------------------------------------------


def _step(
    client: httpx.Client, iid: str, trigger: str, payload: dict[str, Any], state: str
) -> dict[str, Any]:
    r = _fire(client, iid, trigger, payload)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["state"] == state
    assert r.headers["etag"] == f'"{body["version"]}"'
    return body


def test_proposal_lifecycle_runs_to_closed_by_tokens_of_each_role(people: People) -> None:
    """A proposal goes from draft to closed, each step by the token of the role that may take it."""
    created = _start(people.member)
    iid = created["id"]
    assert created["state"] == "draft" and created["org"] == "guiyang"
    _step(people.member, iid, "submit", {"category": "society"}, "submitted")
    _step(people.committee, iid, "start_review", {}, "under_review")
    _step(people.committee, iid, "file", {"number": "2026-001"}, "filed")
    _step(
        people.supervision, iid, "assign", {"mode": "sole", "units": ["water_bureau"]}, "assigned"
    )
    children = people.unit.get(f"/instances/{iid}/children").json()["items"]
    assert [(c["workflow"], c["unit"]) for c in children] == [("proposal_handling", "water_bureau")]
    child = children[0]["id"]
    _step(people.unit, child, "acknowledge", {"contact_person": "张三"}, "acknowledged")
    _step(people.unit, child, "contact_proposer", {"mode": "phone"}, "handling")
    _step(
        people.unit,
        child,
        "draft_reply",
        {"reply_class": "A", "reply_text": "已落实", "signer": "李四"},
        "reply_drafted",
    )
    _step(people.unit, child, "submit_reply", {}, "reply_review")
    _step(people.supervision, child, "approve_reply", {}, "replied")
    assert people.member.get(f"/instances/{iid}").json()["state"] == "replied"
    _step(people.member, iid, "evaluate", {"satisfaction": "satisfied"}, "closed")
    final = people.member.get(f"/instances/{iid}").json()
    assert final["final"] is True
    rows = people.auditor.get(f"/instances/{iid}/history").json()
    assert [r["trigger"] for r in rows] == [
        "start",
        "submit",
        "start_review",
        "file",
        "assign",
        "children_replied",
        "evaluate",
    ]
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert [r["actor"]["id"] for r in rows][:5] == ["m1", "m1", "c1", "c1", "s1"]
    verified = people.auditor.post("/audit/verify", json={"instance_id": iid}).json()
    assert verified == {"checked": 1, "problems": []}


def test_actor_of_a_command_is_the_tokens_actor(api: Api, people: People) -> None:
    """The history names the token's actor; a body that names an actor is refused (422)."""
    iid = _start(people.member)["id"]
    r = people.member.post(
        f"/instances/{iid}/fire",
        json={
            "trigger": "submit",
            "payload": {"category": "society"},
            "actor": {"id": "c1", "roles": ["proposal_committee"]},
        },
    )
    _problem(r, 422, "invalid-request")
    r = people.member.post(
        "/instances",
        json={
            "workflow": "proposal",
            "actor": "c1",
            "data": {"title": "t", "first_proposer": "m1"},
        },
    )
    _problem(r, 422, "invalid-request")
    assert len(api.engine.history(iid)) == 1
    assert api.engine.history(iid)[0].actor == {"id": "m1", "roles": ["member"], "org": "guiyang"}


def test_available_lists_what_the_caller_may_fire_and_why_not(people: People) -> None:
    """available marks the caller's allowed triggers and names the reason for the others."""
    iid = _start(people.member)["id"]
    _fire(people.member, iid, "submit", {"category": "economy"})
    mine = {a["trigger"]: a for a in people.member.get(f"/instances/{iid}/available").json()}
    theirs = {a["trigger"]: a for a in people.committee.get(f"/instances/{iid}/available").json()}
    assert theirs["start_review"]["allowed"] is True
    assert mine["start_review"]["allowed"] is False and "roles" in mine["start_review"]["reason"]


# -- refusals ----------------------------------------------------------------------------------


def test_unknown_route_and_method_are_problems(people: People) -> None:
    """An unknown path gives a 404 problem, a wrong method a 405 problem."""
    _problem(people.member.get("/nowhere"), 404, "not-found")
    _problem(people.member.delete("/instances"), 405, "method-not-allowed")


def test_unknown_instance_is_404(people: People) -> None:
    """An id that does not exist gives 404 not-found."""
    body = _problem(people.member.get("/instances/nope"), 404, "not-found")
    assert body["kind"] == "instance" and body["key"] == "nope"
    _problem(_fire(people.member, "nope", "submit"), 404, "not-found")


def test_unknown_workflow_is_404_naming_the_known_ones(people: People) -> None:
    """Starting a workflow that does not exist gives 404 with the known workflow ids."""
    r = people.member.post("/instances", json={"workflow": "nope", "data": {}})
    assert "proposal" in _problem(r, 404, "not-found")["allowed"]
    _problem(people.member.get("/workflows/nope"), 404, "not-found")


def test_unknown_trigger_is_422_listing_the_triggers(people: People) -> None:
    """A trigger the definition lacks gives 422 unknown-trigger with its triggers."""
    iid = _start(people.member)["id"]
    body = _problem(_fire(people.member, iid, "approve"), 422, "unknown-trigger")
    assert body["trigger"] == "approve" and "submit" in body["allowed"]


def test_trigger_not_allowed_in_state_is_409_listing_the_allowed(people: People) -> None:
    """A trigger that cannot fire from the current state gives 409 with what the caller can."""
    iid = _start(people.member)["id"]
    body = _problem(
        _fire(people.member, iid, "file", {"number": "1"}), 409, "transition-not-allowed"
    )
    assert body["state"] == "draft"
    assert body["allowed"] == ["invite_cosigners", "submit", "withdraw"]
    # a draft is its author's: the committee does not see it, and is answered as for no instance
    theirs = _problem(_fire(people.committee, iid, "file", {"number": "1"}), 404, "not-found")
    assert theirs["key"] == iid


def test_guard_refusal_is_409(people: People) -> None:
    """A guard that refuses (a non-public proposal needs a reason) gives 409."""
    iid = _start(people.member)["id"]
    payload = {"category": "society", "is_public": False}
    body = _problem(_fire(people.member, iid, "submit", payload), 409, "transition-not-allowed")
    assert body["guard"]


def test_wrong_role_is_403_naming_the_allowed_roles(people: People) -> None:
    """An actor without an allowed role gives 403 forbidden with the allowed roles."""
    iid = _start(people.member)["id"]
    _fire(people.member, iid, "submit", {"category": "society"})
    body = _problem(_fire(people.member, iid, "start_review"), 403, "forbidden")
    assert "proposal_committee" in body["allowed"]


def test_separation_of_duties_is_403(api: Api) -> None:
    """Whoever submitted a proposal may not file it, whatever roles they hold (403)."""
    both = api.client("d1:member,proposal_committee@guiyang")
    iid = _start(both, proposer="d1")["id"]
    assert _fire(both, iid, "submit", {"category": "culture"}).status_code == 200
    assert _fire(both, iid, "start_review").status_code == 200
    body = _problem(_fire(both, iid, "file", {"number": "9"}), 403, "forbidden")
    assert body["not_by"] == ["submit"]


def test_invalid_payload_is_422_listing_each_field(people: People) -> None:
    """A payload that misses or mistypes fields gives 422 invalid-payload, one error per field."""
    iid = _start(people.member)["id"]
    body = _problem(
        _fire(people.member, iid, "submit", {"category": "sport"}), 422, "invalid-payload"
    )
    assert [e["field"] for e in body["errors"]] == ["category"]
    r = people.member.post("/instances", json={"workflow": "proposal", "data": {}})
    fields = {e["field"] for e in _problem(r, 422, "invalid-payload")["errors"]}
    assert {"title", "first_proposer"} <= fields


def test_missing_reason_is_422(people: People) -> None:
    """A trigger that requires a reason, fired without one, gives 422."""
    iid = _start(people.member)["id"]
    _fire(people.member, iid, "submit", {"category": "society"})
    body = _problem(_fire(people.committee, iid, "return_for_revision"), 422, "invalid-payload")
    assert body["errors"][0]["field"] == "reason"


def test_malformed_json_is_422(people: People) -> None:
    """A body that is not JSON (or not even text) gives a 422 problem, not a parser trace."""
    r = people.member.post(
        "/instances", content=b"{not json", headers={"content-type": "application/json"}
    )
    _problem(r, 422, "invalid-request")
    r = people.member.post(
        "/instances", content=b"\xff\xfe\x00", headers={"content-type": "application/json"}
    )
    _problem(r, 422, "invalid-request")


def test_oversize_body_is_413(people: People) -> None:
    """A body over the limit gives 413, by Content-Length and when streamed without one."""
    big = json.dumps({"workflow": "proposal", "data": {"body": "x" * 200_000}})
    _problem(
        people.member.post("/instances", content=big, headers={"content-type": "application/json"}),
        413,
        "body-too-large",
    )

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 10_000

    r = people.member.post(
        "/instances", content=chunks(), headers={"content-type": "application/json"}
    )
    _problem(r, 413, "body-too-large")


def test_audit_verify_needs_auditor_or_admin(people: People) -> None:
    """A member may not verify histories (403); an auditor verifies the org's instances."""
    body = _problem(people.member.post("/audit/verify", json={}), 403, "forbidden")
    assert body["allowed"] == ["admin", "auditor"]
    _start(people.member)
    r = people.auditor.post("/audit/verify", json={})
    assert r.status_code == 200 and r.json()["problems"] == [] and r.json()["checked"] >= 1


@pytest.mark.parametrize(
    ("error", "if_match", "status"),
    [
        (NotFound("instance", "x"), False, 404),
        (UnknownTrigger("w", "t", ["a"]), False, 422),
        (TransitionNotAllowed("m", trigger="t", state="s", allowed=[]), False, 409),
        (Forbidden("m", trigger="t", actor="a", allowed=[]), False, 403),
        (InvalidPayload("p", [{"field": "f", "error": "e"}]), False, 422),
        (ConcurrencyConflict("i", 1, 2), False, 409),
        (ConcurrencyConflict("i", 1, 2), True, 412),
        (DefinitionError([]), False, 422),
        (CalendarError("m"), False, 422),
        (_Unavailable("connection refused"), False, 503),
        (XieshangError("SELECT 1"), False, 500),
    ],
)
def test_each_error_maps_to_its_status(error: XieshangError, if_match: bool, status: int) -> None:
    """Each of our errors has one HTTP status; a conflict is 412 when If-Match was sent."""
    assert status_of(error, if_match=if_match) == status


# -- authentication and orgs -------------------------------------------------------------------


def test_missing_token_is_401_with_www_authenticate(api: Api) -> None:
    """No bearer token gives 401 with a WWW-Authenticate challenge."""
    with api.client() as anonymous:
        r = anonymous.get("/instances")
    _problem(r, 401, "unauthenticated")
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_unknown_token_is_401(api: Api) -> None:
    """A token that was never issued gives 401 invalid_token."""
    with api.client(token="xs_not-a-real-token") as stranger:
        r = stranger.get("/workflows")
    _problem(r, 401, "invalid-token")
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


def test_revoked_token_is_401(api: Api) -> None:
    """A token works until it is revoked, and gets 401 from then on."""
    token = api.tokens.create(Actor.parse("r1:member@guiyang"), "phone")
    with api.client(token=token) as client:
        assert client.get("/workflows").status_code == 200
        key = next(t.key for t in api.tokens.list() if t.label == "phone")
        assert api.tokens.revoke(key)
        _problem(client.get("/workflows"), 401, "invalid-token")


def test_other_orgs_instance_is_404_everywhere(people: People) -> None:
    """Another org's instance does not exist for the caller: 404 on every route, never 403."""
    iid = _start(people.member)["id"]
    other = people.other_org
    for r in (
        other.get(f"/instances/{iid}"),
        other.get(f"/instances/{iid}/history"),
        other.get(f"/instances/{iid}/available"),
        other.get(f"/instances/{iid}/children"),
        _fire(other, iid, "submit", {"category": "society"}),
        other.post("/audit/verify", json={"instance_id": iid}),
    ):
        _problem(r, 404, "not-found")
    assert people.member.get(f"/instances/{iid}").json()["version"] == 1


def test_queries_see_the_callers_org_only(people: People) -> None:
    """A query returns the caller's org's instances, whatever org it asks for."""
    mine = _start(people.member)["id"]
    theirs = _start(people.other_org)["id"]
    seen = {i["id"] for i in people.other_org.get("/instances?limit=500").json()["items"]}
    assert theirs in seen and mine not in seen
    assert people.other_org.get("/instances?org=guiyang").json() == {
        "items": [],
        "next_cursor": None,
    }


def test_query_pages_follow_the_cursor_without_overlap(api: Api) -> None:
    """limit and next_cursor walk a query in pages that neither repeat nor skip."""
    client = api.client("p1:member@pager")
    started = [_start(client, proposer="p1")["id"] for _ in range(5)]
    seen: list[str] = []
    url = "/instances?workflow=proposal&state=draft&limit=2"
    page = client.get(url).json()
    while True:
        seen += [i["id"] for i in page["items"]]
        if page["next_cursor"] is None:
            break
        page = client.get(url, params={"cursor": page["next_cursor"]}).json()
    assert seen == started
    _problem(client.get("/instances?cursor=garbage"), 422, "invalid-cursor")


def test_query_by_data_field(api: Api) -> None:
    """field and value select instances by one data field (a JSON value or a bare string)."""
    client = api.client("q1:member@fields")
    wanted = _start(client, proposer="q1")["id"]
    _start(client, proposer="q2")
    items = client.get("/instances", params={"field": "first_proposer", "value": "q1"}).json()
    assert [i["id"] for i in items["items"]] == [wanted]
    odd = client.get("/instances", params={"field": "title\x00", "value": "x"})
    _problem(odd, 422, "invalid-request")


# -- concurrency and idempotency ---------------------------------------------------------------


def test_concurrent_if_match_writers_get_one_success_and_412s(people: People) -> None:
    """Writers racing with the same If-Match: exactly one succeeds, every other gets 412."""
    iid = _start(people.member)["id"]
    results: list[int] = []
    barrier = threading.Barrier(8)

    def write() -> None:
        barrier.wait()
        r = _fire(people.member, iid, "submit", {"category": "society"}, **{"If-Match": '"1"'})
        results.append(r.status_code)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200] + [412] * 7
    assert people.member.get(f"/instances/{iid}").json()["version"] == 2


def test_read_after_another_process_wrote_gives_the_new_etag(tmp_path: Path) -> None:
    """GET reads past the store's cache: a write by another process shows in the next ETag."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    elsewhere, here = open_store(url), open_store(url)
    other, engine = Engine(elsewhere, bundled()), Engine(here, bundled())
    tokens = MemoryTokenStore()
    member = Actor.parse("m1:member@o")
    token = tokens.create(member)
    iid = other.start("proposal", {"title": "t", "first_proposer": "m1"}, member).id
    try:
        with (
            serve_in_thread(create_app(engine, tokens)) as base,
            httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client,
        ):
            assert client.get(f"/instances/{iid}").headers["etag"] == '"1"'
            other.fire(iid, "submit", member, {"category": "society"})
            assert client.get(f"/instances/{iid}").headers["etag"] == '"2"'
    finally:
        elsewhere.close()
        here.close()


def test_stale_if_match_is_412_and_changes_nothing(people: People) -> None:
    """If-Match of an older version gives 412 precondition-failed; the instance is unchanged."""
    iid = _start(people.member)["id"]
    r = _fire(people.member, iid, "submit", {"category": "society"}, **{"If-Match": '"7"'})
    body = _problem(r, 412, "precondition-failed")
    assert body["expected"] == 7 and body["actual"] == 1
    _problem(  # not an ETag at all: the request is malformed, as its OpenAPI schema says
        _fire(people.member, iid, "submit", {"category": "society"}, **{"If-Match": "garbage"}),
        422,
        "invalid-request",
    )
    current = people.member.get(f"/instances/{iid}")
    assert current.headers["etag"] == '"1"'
    r = _fire(
        people.member,
        iid,
        "submit",
        {"category": "society"},
        **{"If-Match": current.headers["etag"]},
    )
    assert r.status_code == 200 and r.headers["etag"] == '"2"'


def test_idempotency_key_retry_gives_same_response_and_one_history_row(
    api: Api, people: People
) -> None:
    """A retried request with the same Idempotency-Key is applied once and answered the same."""
    first = people.member.post(
        "/instances",
        json={"workflow": "proposal", "data": {"title": "t", "first_proposer": "m1"}},
        headers={"Idempotency-Key": "start-42"},
    )
    again = people.member.post(
        "/instances",
        json={"workflow": "proposal", "data": {"title": "t", "first_proposer": "m1"}},
        headers={"Idempotency-Key": "start-42"},
    )
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    iid = first.json()["id"]
    one = _fire(people.member, iid, "submit", {"category": "society"}, **{"Idempotency-Key": "k1"})
    two = _fire(people.member, iid, "submit", {"category": "society"}, **{"Idempotency-Key": "k1"})
    assert one.status_code == two.status_code == 200
    assert one.json() == two.json() and one.headers["etag"] == two.headers["etag"]
    assert [e.trigger for e in api.engine.history(iid)] == ["start", "submit"]
    reused = _fire(people.member, iid, "withdraw", reason="r", **{"Idempotency-Key": "k1"})
    _problem(reused, 409, "concurrency-conflict")


def test_idempotency_keys_are_scoped_to_the_caller(api: Api, people: People) -> None:
    """Another caller's identical Idempotency-Key is a different command (no shared result)."""
    a = _start(people.member, **{"Idempotency-Key": "same"})
    b = _start(api.client("m2:member@guiyang"), proposer="m2", **{"Idempotency-Key": "same"})
    assert a["id"] != b["id"]


# -- workflows, health, docs -------------------------------------------------------------------


def test_workflow_routes_give_definition_schema_and_diagrams(people: People) -> None:
    """The workflow list, definition, its JSON Schemas, the format's JSON Schema and Mermaid/SVG
    diagrams are served."""
    listed = people.member.get("/workflows").json()
    assert "proposal" in {w["id"] for w in listed}
    definition = people.member.get("/workflows/proposal").json()
    assert definition["id"] == "proposal" and "transitions" in definition
    schemas = people.member.get("/workflows/proposal/schema").json()
    assert schemas["start"]["required"] == ["title", "first_proposer"]
    assert schemas["payloads"]["file"]["required"] == ["number"]
    assert "properties" in people.member.get("/schemas/workflow-format").json()
    mermaid = people.member.get("/workflows/proposal/diagram?format=mermaid")
    assert mermaid.status_code == 200 and "stateDiagram" in mermaid.text
    svg = people.member.get("/workflows/proposal/diagram", params={"format": "svg"})
    assert svg.status_code in (200, 501)
    if svg.status_code == 200:
        assert svg.headers["content-type"] == "image/svg+xml" and "<svg" in svg.text
    _problem(people.member.get("/workflows/proposal/diagram?format=png"), 422, "invalid-request")


def test_health_ready_and_openapi_are_served(api: Api) -> None:
    """/health and /ready answer without a token; /openapi.json documents every route."""
    with api.client() as anonymous:
        assert anonymous.get("/health").json() == {"status": "ok"}
        assert anonymous.get("/ready").json() == {"status": "ok"}
        doc = anonymous.get("/openapi.json").json()
        assert anonymous.get("/docs").status_code == 200
    assert {
        "/instances",
        "/instances/{instance_id}/fire",
        "/events/stream",
        "/audit/verify",
    } <= set(doc["paths"])
    fire = doc["paths"]["/instances/{instance_id}/fire"]["post"]
    assert {"401", "403", "404", "409", "412", "422"} <= set(fire["responses"])
    assert "examples" in doc["components"]["schemas"]["FireIn"]
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_unexpected_error_is_500_without_details(tmp_path: Path) -> None:
    """An unforeseen or store failure gives a bare 500 (503 when the store is down): no SQL."""

    class Broken(MemoryStore):
        def query(self, query: Any) -> Any:
            raise RuntimeError("SELECT secret FROM instances -- boom")

        def load(self, instance_id: str, *, fresh: bool = False) -> Any:
            if instance_id == "down":
                raise _Unavailable("could not connect: SELECT * FROM instances")
            raise XieshangError("UPDATE instances SET secret = 1 failed")

    tokens = MemoryTokenStore()
    token = tokens.create(Actor.parse("x:member@o"))
    app = create_app(Engine(Broken(), bundled()), tokens)
    # the server closes a connection after an unhandled error: no keep-alive, so no reset race
    no_reuse = httpx.Limits(max_keepalive_connections=0)
    with serve_in_thread(app) as base, httpx.Client(base_url=base, limits=no_reuse) as client:
        r = client.get("/instances", headers={"Authorization": f"Bearer {token}"})
        ready = client.get("/ready")
        store_error = client.get("/instances/x", headers={"Authorization": f"Bearer {token}"})
        down = client.get("/instances/down", headers={"Authorization": f"Bearer {token}"})
    _problem(store_error, 500, "internal-error")
    _problem(down, 503, "store-unavailable")
    assert "SELECT" not in down.text and "UPDATE" not in store_error.text
    body = _problem(r, 500, "internal-error")
    assert (
        "SELECT" not in r.text
        and "boom" not in r.text
        and set(body) <= {"type", "title", "status", "detail", "code", "instance"}
    )
    _problem(ready, 503, "store-unavailable")
    assert "SELECT" not in ready.text


# -- live events -------------------------------------------------------------------------------


def _read_events(lines: Iterator[str], count: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for line in lines:
        if line.startswith("id: "):
            current["id"] = line[4:]
        elif line.startswith("event: "):
            current["event"] = line[7:]
        elif line.startswith("data: "):
            current["data"] = json.loads(line[6:])
        elif line == "" and "data" in current:
            events.append(current)
            current = {}
            if len(events) >= count:
                break
    return events


def test_event_stream_sends_the_callers_org_events_only(api: Api) -> None:
    """The SSE stream carries the caller's org's events, none of another org's, and resumes."""
    watcher = api.client("w2:member@streamorg")  # a draft's events go to its author only
    outsider = api.client("o1:member@elsewhere")
    writer = api.client("w2:member@streamorg")
    with watcher.stream("GET", "/events/stream") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        _start(outsider, proposer="o1")
        mine = _start(writer, proposer="w2")["id"]
        events = _read_events(response.iter_lines(), 2)
    assert [e["event"] for e in events] == [
        "xieshang.instance.started",
        "xieshang.proposal.drafted",
    ]
    assert all(e["data"]["subject"] == mine for e in events)
    assert all(e["data"]["data"]["org"] == "streamorg" for e in events)
    with watcher.stream(
        "GET", "/events/stream", headers={"Last-Event-ID": events[0]["id"]}
    ) as response:
        again = _read_events(response.iter_lines(), 1)
    assert again[0]["data"]["id"] == events[1]["data"]["id"]


def test_event_stream_sends_a_late_committed_event_once(tmp_path: Path) -> None:
    """An event that becomes visible behind the stream's cursor is still sent, and only once."""
    store = MemoryStore()
    tokens = MemoryTokenStore()
    engine = Engine(store, bundled())
    member = Actor.parse("m1:member@o")
    token = tokens.create(member)
    engine.start("proposal", {"title": "t", "first_proposer": "m1"}, member)
    late = store._outbox.pop()  # as if its transaction had not committed yet
    with (
        serve_in_thread(create_app(engine, tokens)) as base,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client,
        client.stream("GET", "/events/stream", headers={"Last-Event-ID": "0"}) as response,
    ):
        lines = response.iter_lines()
        seen = _read_events(lines, 1)
        engine.start("proposal", {"title": "t2", "first_proposer": "m1"}, member)
        seen += _read_events(lines, 2)
        store._outbox.insert(1, late)  # it commits, behind rows already sent
        seen += _read_events(lines, 1)
    ids = [e["data"]["id"] for e in seen]
    assert len(ids) == len(set(ids)) == 4 and ids[-1] == late.id


# -- tokens and the command line ---------------------------------------------------------------


def test_tokens_are_stored_as_hashes_only(sql_url: str) -> None:
    """A token's text is never stored: the table holds its sha256, and listings show a key."""
    store = token_store_for(sql_url)
    token = store.create(Actor.parse("t1:member@o"), "laptop")
    engine = store.engine
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM tokens"))]
    assert len(rows) == 1 and token not in json.dumps(rows)
    assert store.lookup(token) == Actor.parse("t1:member@o")
    assert store.lookup(token + "x") is None
    listed = store.list()
    assert listed[0].key == rows[0]["token_hash"][:12] and listed[0].label == "laptop"
    assert store.revoke(listed[0].key[:8]) and store.lookup(token) is None
    assert store.list()[0].revoked_at is not None
    store.close()


def test_token_needs_an_org_and_a_role() -> None:
    """A token is for an actor with a role and an org; otherwise it is refused."""
    with pytest.raises(InvalidPayload):
        MemoryTokenStore().create(Actor.of("x", "member"))


def test_tokens_cli_creates_lists_and_revokes(tmp_path: Path) -> None:
    """`tokens create` prints the token once; `list` shows keys; `revoke` stops it."""
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test root."""

    register_cli(app)
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    created = runner.invoke(
        app, ["tokens", "create", "--actor", "u1:member@o", "--label", "ci", "--db", url]
    )
    assert created.exit_code == 0, created.output
    token = created.output.strip()
    assert token.startswith("xs_")
    listed = runner.invoke(app, ["tokens", "list", "--db", url, "--json"])
    rows = json.loads(listed.output)
    assert rows[0]["actor"]["id"] == "u1" and token not in listed.output
    revoked = runner.invoke(app, ["tokens", "revoke", rows[0]["key"], "--db", url])
    assert revoked.exit_code == 0, revoked.output
    check = token_store_for(url)
    assert check.lookup(token) is None
    check.close()
    bad = runner.invoke(app, ["tokens", "create", "--actor", "no-roles", "--db", url])
    assert bad.exit_code == 2


def test_no_token_may_hold_the_system_role() -> None:
    """The system role is the engine's own (timers, joins): no token is issued for it."""
    with pytest.raises(InvalidPayload):
        MemoryTokenStore().create(Actor.parse("x:member,system@o"))


def test_admin_issues_lists_and_revokes_its_orgs_tokens(api: Api) -> None:
    """An admin manages its own org's tokens over HTTP; others get 403, other orgs see none."""
    admin = api.client("root:admin@tokenorg")
    r = admin.post("/tokens", json={"id": "wb01", "roles": ["handling_unit"], "unit": "wb"})
    assert r.status_code == 201, r.text
    issued = r.json()
    assert issued["actor"] == {
        "id": "wb01",
        "roles": ["handling_unit"],
        "org": "tokenorg",
        "unit": "wb",
    }
    with api.client(token=issued["token"]) as holder:
        assert holder.get("/workflows").status_code == 200
        _problem(holder.get("/tokens"), 403, "forbidden")
        listed = admin.get("/tokens").json()
        assert issued["key"] in {t["key"] for t in listed}
        assert all(t["actor"]["org"] == "tokenorg" and "token" not in t for t in listed)
        outsider = api.client("boss:admin@otherorg")
        assert issued["key"] not in {t["key"] for t in outsider.get("/tokens").json()}
        _problem(outsider.delete(f"/tokens/{issued['key']}"), 404, "not-found")
        assert admin.delete(f"/tokens/{issued['key']}").status_code == 204
        _problem(holder.get("/workflows"), 401, "invalid-token")
    bad = admin.post("/tokens", json={"id": "a:b", "roles": ["member"], "label": "x\x00"})
    assert {e["field"] for e in _problem(bad, 422, "invalid-request")["errors"]} == {
        "body.id",
        "body.label",
    }
    r = admin.post("/tokens", json={"id": "t", "roles": ["system"]})
    _problem(r, 422, "invalid-payload")
    r = admin.post("/tokens", json={"id": "t", "roles": ["member"], "org": "otherorg"})
    _problem(r, 422, "invalid-request")


def test_reads_follow_the_workflows_read_rules(api: Api) -> None:
    """Another member's draft, and a non-public proposal to a unit never assigned, are 404 with
    the body of a missing instance; lists show each caller only what it may read."""
    author = api.client("ra:member@readorg")
    other = api.client("rb:member@readorg")
    committee = api.client("rc:proposal_committee@readorg")
    office = api.client("rs:supervision_office@readorg")
    stranger = api.client("rh:handling_unit@readorg/housing")
    assigned = api.client("rw:handling_unit@readorg/water")
    draft = _start(author, proposer="ra")["id"]
    secret = _start(author, proposer="ra")["id"]
    _step(author, secret, "submit",
          {"category": "society", "is_public": False, "non_public_reason": "涉及个人"},
          "submitted")  # fmt: skip
    _step(committee, secret, "start_review", {}, "under_review")
    _step(committee, secret, "file", {"number": "R-1"}, "filed")
    _step(office, secret, "assign", {"mode": "sole", "units": ["water"]}, "assigned")
    missing = other.get("/instances/no-such-id")
    assert missing.status_code == 404
    for client, iid in ((other, draft), (other, secret), (stranger, secret), (committee, draft)):
        for path in ("", "/history", "/children"):
            r = client.get(f"/instances/{iid}{path}")
            assert r.status_code == 404, (path, r.text)
            body = r.json()
            assert {k: v for k, v in body.items() if k not in ("key", "detail", "instance")} == {
                k: v for k, v in missing.json().items() if k not in ("key", "detail", "instance")
            }
    assert author.get(f"/instances/{draft}").json()["data"]["first_proposer"] == "ra"
    assert assigned.get(f"/instances/{secret}").status_code == 200
    listed = {i["id"] for i in other.get("/instances?workflow=proposal").json()["items"]}
    assert listed.isdisjoint({draft, secret})
    assert {draft, secret} <= {
        i["id"] for i in author.get("/instances?workflow=proposal").json()["items"]
    }
    kids = assigned.get(f"/instances/{secret}/children").json()["items"]
    assert [k["unit"] for k in kids] == ["water"]
