"""The HTTP API's doors: bad bodies are 4xx problems that change nothing, idempotency keys are
the caller's and bound to their request, slow clients are cut off, 405 says what is allowed,
and the OpenAPI document promises no more than the API takes. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from xieshang import Actor, Engine
from xieshang.adapters.cli import app as cli
from xieshang.adapters.http import create_app
from xieshang.adapters.http.commands import token_store_for
from xieshang.adapters.http.limits import ENV_HEADER_TIMEOUT, TimedH11Protocol
from xieshang.adapters.http.testing import serve_in_thread
from xieshang.adapters.sql import open_store
from xieshang.workflows import bundled

PROBLEM = "application/problem+json"
ORG = "guiyang"
DATA = {"title": "关于加强社区养老服务的提案", "first_proposer": "m1"}


@dataclass
class Served:
    url: str
    engine: Engine
    member: httpx.Client
    tokens: Any
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, actor: Actor) -> httpx.Client:
        """A client with a token of ``actor``, closed with the server."""
        token = self.tokens.create(actor)
        made = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"})
        self.clients.append(made)
        return made

    def written(self) -> tuple[int, int]:
        ids = list(self.engine.store.instance_ids())
        return len(ids), sum(len(self.engine.store.history(i)) for i in ids)


QUIET_S = 2.0  # how long the served API waits for a request's head, and then for its body


@pytest.fixture
def served(sql_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """The API over a fresh database of each backend, on uvicorn with the timed protocol
    (a request head must come within 2 s), its bodies within 2 s: short enough for the tests of
    a client that goes quiet, long enough for a whole request on a loaded host."""
    monkeypatch.setenv(ENV_HEADER_TIMEOUT, str(QUIET_S))
    store = open_store(sql_url)
    tokens = token_store_for(sql_url)
    engine = Engine(store, bundled())
    api = create_app(engine, tokens, body_timeout=QUIET_S)
    with serve_in_thread(api, http=TimedH11Protocol) as base:
        token = tokens.create(Actor.parse(f"m1:member,proposal_committee@{ORG}"))
        member = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
        served = Served(base, engine, member, tokens)
        yield served
        for client in [member, *served.clients]:
            client.close()
    store.close()
    tokens.close()


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code), body
    return body


def post_raw(client: httpx.Client, path: str, text: str, **headers: str) -> httpx.Response:
    return client.post(path, content=text, headers={"content-type": "application/json", **headers})


def deep(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


# -- bad bodies ----------------------------------------------------------------------------------

BAD_STARTS = [
    (
        "NaN",
        '{"workflow": "proposal", "data": {"title": NaN, "first_proposer": "m1"}}',
        "invalid-payload",
        "title: is not a finite number",
    ),
    (
        "1e999",
        '{"workflow": "proposal", "data": {"title": "t", "first_proposer": "m1", "year": 1e999}}',
        "invalid-payload",
        "year: is not a finite number",
    ),
    (
        "NUL",
        '{"workflow": "proposal", "data": {"title": "a\\u0000b", "first_proposer": "m1"}}',
        "invalid-payload",
        "title: holds a NUL character",
    ),
    (
        "nested 40",
        '{"workflow": "proposal", "data": {"title": ' + deep(40) + "}}",
        "invalid-payload",
        "nests deeper than 32 levels",
    ),
    (
        "nested 4000",
        '{"workflow": "proposal", "data": ' + deep(4000) + "}",
        "invalid-request",
        "nests deeper than a JSON reader goes",
    ),
    ("a list", "[1, 2]", "invalid-request", "valid dictionary"),
    ("data a list", '{"workflow": "proposal", "data": [1]}', "invalid-request", "data"),
]


@pytest.mark.parametrize(
    ("case", "body", "code", "message"), BAD_STARTS, ids=[b[0] for b in BAD_STARTS]
)
def test_a_bad_start_body_is_a_422_problem_and_writes_nothing(
    served: Served, case: str, body: str, code: str, message: str
) -> None:
    """NaN, 1e999, NUL, deep nesting or a non-object: 422 problem+json naming it, no row."""
    before = served.written()
    refused = problem(post_raw(served.member, "/instances", body), 422, code)
    assert message in refused["detail"]
    assert served.written() == before


def test_a_nul_in_a_reason_is_a_422_not_a_500(served: Served) -> None:
    """A reason holding NUL (PostgreSQL text refuses it) is refused at the door, naming it."""
    iid = served.member.post("/instances", json={"workflow": "proposal", "data": DATA}).json()["id"]
    submit = {"trigger": "submit", "payload": {"category": "society"}}
    served.member.post(f"/instances/{iid}/fire", json=submit)
    before = served.written()
    body = '{"trigger": "return_for_revision", "reason": "请补充\\u0000材料"}'
    refused = problem(
        post_raw(served.member, f"/instances/{iid}/fire", body), 422, "invalid-payload"
    )
    assert refused["errors"][0]["field"] == "reason"
    assert served.written() == before
    assert served.member.get(f"/instances/{iid}").json()["version"] == 2


def test_a_call_no_engine_takes_is_a_422_not_a_500() -> None:
    """Usage (an argument of the wrong kind, a query criterion with NUL) maps to 422."""
    from xieshang import Usage
    from xieshang.adapters.http import status_of

    assert status_of(Usage("invalid query: state: holds a NUL character", "criteria")) == 422


def test_a_nul_in_a_path_or_query_is_refused_not_stored(served: Served) -> None:
    """An instance id with NUL is simply not found; a query criterion with NUL is 422."""
    problem(served.member.get("/instances/abc%00def"), 404, "not-found")
    problem(served.member.get("/instances", params={"state": "draft\x00"}), 422, "invalid-request")


# -- idempotency keys ----------------------------------------------------------------------------


def test_keys_of_callers_whose_ids_hold_a_slash_do_not_meet(served: Served) -> None:
    """Caller m1 with key 'k/x' and caller 'm1/k' with key 'x' are two commands (their parts
    once spelled one string, 'guiyang/m1/k/x')."""
    one = served.client(Actor.of("m1", "member", org=ORG))
    two = served.client(Actor.of("m1/k", "member", org=ORG))
    first = one.post(
        "/instances",
        json={"workflow": "proposal", "data": DATA},
        headers={"Idempotency-Key": "k/x"},
    )
    second = two.post(
        "/instances", json={"workflow": "proposal", "data": DATA}, headers={"Idempotency-Key": "x"}
    )
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    assert served.written() == (2, 2)


def test_a_key_with_another_body_is_a_409_naming_the_key(served: Served) -> None:
    """The same key and body answer the first result again; the same key with another payload
    is 409 naming the key and what differs, and writes nothing."""
    iid = served.member.post("/instances", json={"workflow": "proposal", "data": DATA}).json()["id"]
    key = {"Idempotency-Key": "submit-7"}
    fire = f"/instances/{iid}/fire"
    body = {"trigger": "submit", "payload": {"category": "society"}}
    first = served.member.post(fire, json=body, headers=key)
    again = served.member.post(fire, json=body, headers=key)
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    before = served.written()
    other = {"trigger": "submit", "payload": {"category": "economy"}}
    conflict = problem(
        served.member.post(fire, json=other, headers=key), 409, "concurrency-conflict"
    )
    assert conflict["idempotency_key"] == "submit-7" and conflict["differs"] == "payload"
    assert "Idempotency-Key 'submit-7' was used for another request" in conflict["detail"]
    start = {"workflow": "proposal", "data": {**DATA, "title": "另一件"}}
    used = problem(
        served.member.post("/instances", json=start, headers=key), 409, "concurrency-conflict"
    )
    assert used["differs"] == "trigger"
    assert served.written() == before
    assert served.member.get(f"/instances/{iid}").json()["data"]["category"] == "society"


# -- methods, documents --------------------------------------------------------------------------


def test_a_405_names_every_method_of_the_path(served: Served) -> None:
    """DELETE /instances is 405 with Allow: GET, POST (both routes of the path)."""
    refused = problem(served.member.delete("/instances"), 405, "method-not-allowed")
    allowed = served.member.delete("/instances").headers["allow"]
    assert {m.strip() for m in allowed.split(",")} == {"GET", "POST"}
    assert "allowed: GET, POST" in refused["detail"]
    assert served.member.request("PUT", "/instances/x/fire").headers["allow"] == "POST"


def test_the_document_promises_no_more_than_the_api_takes(served: Served) -> None:
    """Cursors, If-Match, triggers and start data are documented as tightly as they are
    checked, and a request outside them is refused as the document says."""
    doc = served.member.get("/openapi.json").json()
    params = {p["name"]: p for p in doc["paths"]["/instances"]["get"]["parameters"]}
    assert "pattern" in params["cursor"]["schema"]
    assert "anyOf" not in params["overdue"]["schema"]  # no null: a URL cannot spell one
    fire = {
        p["name"]: p for p in doc["paths"]["/instances/{instance_id}/fire"]["post"]["parameters"]
    }
    assert "pattern" in fire["If-Match"]["schema"]
    schemas = doc["components"]["schemas"]
    assert "submit" in schemas["FireIn"]["properties"]["trigger"]["enum"]
    mapping = schemas["StartIn"]["discriminator"]["mapping"]
    assert set(mapping) == set(served.engine.registry.ids())
    variant = schemas[mapping["proposal"].rsplit("/", 1)[1]]
    proposal = schemas[variant["properties"]["data"]["$ref"].rsplit("/", 1)[1]]
    assert {"title", "first_proposer"} <= set(proposal["required"])
    assert proposal["additionalProperties"] is False
    problem(served.member.get("/instances", params={"cursor": "nonsense"}), 422, "invalid-cursor")
    iid = served.member.post("/instances", json={"workflow": "proposal", "data": DATA}).json()["id"]
    empty = served.member.post(
        f"/instances/{iid}/fire",
        json={"trigger": "submit", "payload": {"category": "society"}},
        headers={"If-Match": ""},
    )
    problem(empty, 422, "invalid-request")
    assert served.member.get(f"/instances/{iid}").json()["version"] == 1


# -- slow clients --------------------------------------------------------------------------------


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=20)


def test_a_request_head_that_never_ends_is_cut_off(served: Served) -> None:
    """A client that sends part of a head and goes quiet is disconnected (after 2 s here)."""
    with _connect(served.url) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        assert conn.recv(1024) == b""  # closed by the server, no answer


def test_a_body_that_never_arrives_is_a_408(served: Served) -> None:
    """A body announced at 100 bytes of which 10 come is answered 408 request-timeout."""
    token = served.member.headers["Authorization"]
    with _connect(served.url) as conn:
        conn.sendall(
            b"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: " + token.encode() + b'\r\nContent-Length: 100\r\n\r\n{"workflow'
        )
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert json.loads(body)["code"] == "request-timeout"
    assert served.written() == (0, 0)


def test_serve_never_echoes_the_password_of_an_unreadable_url() -> None:
    """`serve --db` with a URL that cannot be read exits 2 naming it with its password masked."""
    result = CliRunner().invoke(cli, ["serve", "--db", "postgresql://u:s3cret@db:port/x"])
    assert result.exit_code == 2
    assert "postgresql://u:***@db:port/x" in result.output
    assert "s3cret" not in result.output


# -- fuzz ----------------------------------------------------------------------------------------

_POISON = st.sampled_from(
    [
        "NaN",
        "Infinity",
        "-Infinity",
        "1e999",
        '"\\u0000"',
        '"a\\ud800"',
        "18446744073709551616",
        deep(50),
    ]
)


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(poison=_POISON, where=st.sampled_from(["payload", "reason", "data"]), wrap=st.integers(0, 3))
def test_fuzz_http_refuses_every_poisoned_body(
    served: Served, poison: str, where: str, wrap: int
) -> None:
    """A poisoned value anywhere in a start or fire body is a 4xx problem; nothing changes."""
    value = "[" * wrap + poison + "]" * wrap
    iid = served.engine.start("proposal", DATA, Actor.of("m1", "member", org=ORG)).id
    before = served.written()
    if where == "data":
        text = (
            '{"workflow": "proposal", "data": {"title": "t", "first_proposer": "m1", '
            f'"extra": {value}}}'
        )
        answer = post_raw(served.member, "/instances", text)
    else:
        inner = (
            f'"payload": {{"category": "society", "x": {value}}}'
            if where == "payload"
            else f'"reason": {value}'
        )
        text = f'{{"trigger": "submit", {inner}}}'
        answer = post_raw(served.member, f"/instances/{iid}/fire", text)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    assert served.written() == before
