"""The HTTP API's contract: each workflow's JSON Schemas, readable operation ids, typed bodies
and problems, the CloudEvents as webhooks, and a client generated from the served document
(openapi-python-client, offline) that drives a proposal to ``filed`` on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import httpx
import jsonschema_rs
import pytest

from xieshang import Actor, Engine
from xieshang.adapters.http import MemoryTokenStore, create_app
from xieshang.adapters.http.commands import token_store_for
from xieshang.adapters.http.testing import serve_in_thread
from xieshang.adapters.memory import MemoryStore
from xieshang.adapters.sql.store import open_store
from xieshang.adapters.web.ratings import rating_event
from xieshang.workflows import bundled

PACKAGE = "xieshang_contract_client"
DOCUMENT = create_app(Engine(MemoryStore(), bundled()), MemoryTokenStore()).openapi()
SCHEMAS = DOCUMENT["components"]["schemas"]
OPERATIONS = {
    ("get", "/workflows"): "list_workflows",
    ("get", "/workflows/{workflow_id}"): "get_workflow",
    ("get", "/workflows/{workflow_id}/schema"): "get_workflow_schema",
    ("get", "/schemas/workflow-format"): "get_workflow_format_schema",
    ("get", "/workflows/{workflow_id}/diagram"): "get_diagram",
    ("post", "/instances"): "start_instance",
    ("get", "/instances"): "list_instances",
    ("get", "/instances/{instance_id}"): "get_instance",
    ("post", "/instances/{instance_id}/fire"): "fire",
    ("get", "/instances/{instance_id}/available"): "available_triggers",
    ("get", "/instances/{instance_id}/history"): "get_history",
    ("get", "/instances/{instance_id}/children"): "list_children",
    ("post", "/audit/verify"): "verify",
    ("get", "/health"): "health",
    ("get", "/ready"): "ready",
    ("get", "/events/stream"): "stream_events",
    ("get", "/reports/{kind}"): "get_report",
    ("get", "/tokens"): "list_tokens",
    ("post", "/tokens"): "create_token",
    ("delete", "/tokens/{key}"): "revoke_token",
}


def _validator(schema: dict[str, Any]) -> Any:
    return jsonschema_rs.Draft202012Validator(schema)


def _in_document(pointer: str) -> Any:
    """A validator of the document's schema at ``pointer``, its references resolved in it."""
    return _validator({**DOCUMENT, "$ref": pointer})


# -- each workflow's schemas -------------------------------------------------------------------


@pytest.fixture(scope="module")
def member() -> Iterator[httpx.Client]:
    tokens = MemoryTokenStore()
    token = tokens.create(Actor.parse("m1:member@guiyang"))
    app = create_app(Engine(MemoryStore(), bundled()), tokens)
    headers = {"Authorization": f"Bearer {token}"}
    with serve_in_thread(app) as base, httpx.Client(base_url=base, headers=headers) as client:
        yield client


def test_a_workflows_schema_route_gives_its_data_payload_and_start_schemas(
    member: httpx.Client,
) -> None:
    """``/workflows/{id}/schema`` gives the workflow's own schemas, each complete in itself:
    start data with its required fields, one payload per trigger (an empty object for one that
    takes none), and the data an instance may hold."""
    schemas = member.get("/workflows/proposal/schema").json()
    definition = bundled().get("proposal").definition
    assert set(schemas) == {"data", "payloads", "start"}
    assert list(schemas["payloads"]) == definition.triggers()
    assert set(schemas["data"]["properties"]) == set(definition.data)
    assert "required" not in schemas["data"]
    assert schemas["start"]["required"] == ["title", "first_proposer"]
    assert schemas["payloads"]["file"]["required"] == ["number"]
    assert schemas["payloads"]["withdraw"]["properties"] == {}
    assert schemas["payloads"]["withdraw"]["additionalProperties"] is False

    start = _validator(schemas["start"])
    assert start.is_valid({"title": "关于加强社区养老服务的提案", "first_proposer": "m1"})
    assert not start.is_valid({"title": "t"})  # first_proposer missing
    assert not start.is_valid({"title": "t", "first_proposer": "m1", "nickname": "x"})
    evaluate = _validator(schemas["payloads"]["evaluate"])  # a free object: $defs inside
    assert "$defs" in schemas["payloads"]["evaluate"]
    assert evaluate.is_valid({"satisfaction": "satisfied", "feedback": {"notes": [["a", 1]]}})
    assert not evaluate.is_valid({"satisfaction": "satisfied", "feedback": {"k": "\x00"}})


def test_the_schema_route_refuses_an_unknown_workflow_or_version(member: httpx.Client) -> None:
    """An unknown workflow is a 404 problem naming the known ones; a version below 1 is 422."""
    missing = member.get("/workflows/proposals/schema")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["allowed"] == sorted(bundled().ids())
    assert member.get("/workflows/proposal/schema", params={"version": 0}).status_code == 422


def test_the_definition_formats_schema_has_its_own_route(member: httpx.Client) -> None:
    """The JSON Schema of the YAML format (for editors) is served once, at its own route."""
    from xieshang.shared import schema_json

    assert member.get("/schemas/workflow-format").json() == schema_json()


# -- the document ------------------------------------------------------------------------------


def test_operation_ids_are_the_documented_names() -> None:
    """Each route has the operation id the docs name; every id is a unique snake_case name."""
    found = {
        (method, path): operation["operationId"]
        for path, operations in DOCUMENT["paths"].items()
        for method, operation in operations.items()
    }
    assert {key: found.get(key) for key in OPERATIONS} == OPERATIONS
    assert len(set(found.values())) == len(found)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", name) for name in found.values())


def test_times_actors_and_history_rows_are_typed() -> None:
    """Times are date-time; a history row's actor is an ActorOut; data and payloads are JSON
    objects; a token's actor is an ActorOut too."""
    instance = SCHEMAS["InstanceOut"]["properties"]
    for name in ("created_at", "updated_at", "entered_at"):
        assert (instance[name]["type"], instance[name]["format"]) == ("string", "date-time"), name
    assert {"type": "string", "format": "date-time"} in instance["due_at"]["anyOf"]
    history = SCHEMAS["HistoryEntryOut"]["properties"]
    assert history["actor"] == {"$ref": "#/components/schemas/ActorOut"}
    assert history["occurred_at"]["format"] == history["recorded_at"]["format"] == "date-time"
    assert history["payload"]["allOf"] == instance["data"]["allOf"]
    assert instance["data"]["allOf"] == [{"$ref": "#/components/schemas/JsonObject"}]
    assert set(SCHEMAS["ActorOut"]["properties"]) == {"id", "roles", "org", "unit"}
    assert SCHEMAS["ActorOut"]["required"] == ["id", "roles"]
    assert SCHEMAS["TokenInfoOut"]["properties"]["actor"] == history["actor"]
    assert SCHEMAS["TokenInfoOut"]["properties"]["created_at"]["format"] == "date-time"


def test_problems_are_typed_and_only_problem_json() -> None:
    """A problem's ``allowed``, ``trigger``, ``state`` and ``errors`` are typed; every error
    response is ``application/problem+json`` (the framework's own 422 body is never sent, so it
    is not documented)."""
    problem = SCHEMAS["ProblemOut"]["properties"]
    assert problem["allowed"]["anyOf"][0] == {"type": "array", "items": {"type": "string"}}
    assert problem["trigger"]["anyOf"][0] == problem["state"]["anyOf"][0] == {"type": "string"}
    assert problem["errors"]["anyOf"][0]["items"] == {"$ref": "#/components/schemas/FieldErrorOut"}
    assert SCHEMAS["FieldErrorOut"]["required"] == ["field", "error"]
    assert "HTTPValidationError" not in SCHEMAS and "ValidationError" not in SCHEMAS
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert list(response["content"]) == ["application/problem+json"], (
                        method,
                        path,
                        status,
                    )


def test_webhooks_name_every_event_type_the_workflows_emit() -> None:
    """One webhook per event type: the engine's seven, each ``emits:`` name, and a warning per
    workflow with soft rules; each is a signed CloudEvents POST."""
    registry = bundled()
    named = {
        f"xieshang.{name}"
        for wf in registry
        for name in [
            *wf.definition.start.emits,
            *(e for t in wf.definition.transitions for e in t.emits),
        ]
    }
    warned = {
        f"xieshang.{wf.id}.warning"
        for wf in registry
        if any(t.warn for t in wf.definition.transitions)
    }
    engine = {
        f"xieshang.instance.{kind}"
        for kind in (
            "started",
            "transitioned",
            "completed",
            "reminder",
            "overdue",
            "deadline_changed",
            "updated",
        )
    }
    assert warned == {"xieshang.consultation_topic.warning"}
    rated = {"xieshang.proposal.public_rated"}  # the public page's ratings, not a step's
    assert set(DOCUMENT["webhooks"]) == engine | named | warned | rated
    filed = DOCUMENT["webhooks"]["xieshang.proposal.filed"]["post"]
    assert list(filed["requestBody"]["content"]) == ["application/cloudevents+json"]
    assert filed["parameters"] == [{"$ref": "#/components/parameters/EventSignature"}]
    header = DOCUMENT["components"]["parameters"]["EventSignature"]
    assert header["name"] == "X-Xieshang-Signature" and header["in"] == "header"


def test_the_events_of_a_run_match_their_webhooks() -> None:
    """Every event a proposal's run to ``filed`` writes to the outbox is valid against the
    webhook of its type; one of another type, or with a field of another type, is not."""
    engine = Engine(MemoryStore(), bundled())
    member, committee = (
        Actor.parse("m1:member@guiyang"),
        Actor.parse("c1:proposal_committee@guiyang"),
    )
    data = {"title": "关于加强社区养老服务的提案", "first_proposer": "m1"}
    iid = engine.start("proposal", data, member, org="guiyang").id
    engine.fire(iid, "submit", member, {"category": "society"})
    engine.fire(iid, "start_review", committee)
    engine.fire(iid, "file", committee, {"number": "2026-001"})
    events = [e.body for e in engine.store.outbox()]
    assert [e["type"] for e in events] == [
        "xieshang.instance.started",
        "xieshang.proposal.drafted",
        "xieshang.instance.transitioned",
        "xieshang.proposal.submitted",
        "xieshang.instance.transitioned",
        "xieshang.instance.transitioned",
        "xieshang.proposal.filed",
    ]
    for event in events:
        pointer = f"#/webhooks/{event['type'].replace('/', '~1')}/post/requestBody/content/"
        validator = _in_document(pointer + "application~1cloudevents+json/schema")
        errors = [e.message for e in validator.iter_errors(event)]
        assert errors == [], (event["type"], errors)
    filed = _in_document(
        "#/webhooks/xieshang.proposal.filed/post/requestBody/content/"
        "application~1cloudevents+json/schema"
    )
    assert not filed.is_valid(events[0])  # its type is another's
    wrong = json.loads(json.dumps(events[-1]))
    wrong["data"]["data"]["category"] = "sports"
    assert not filed.is_valid(wrong)


def test_a_public_rating_event_matches_its_webhook_and_no_step_event_does() -> None:
    """The event the public page writes for a rating is valid against its own webhook; a step's
    event is not, nor a rating with a value the page does not offer."""
    engine = Engine(MemoryStore(), bundled())
    member = Actor.parse("m1:member@guiyang")
    data = {"title": "关于加强社区养老服务的提案", "first_proposer": "m1"}
    instance = engine.start("proposal", data, member, org="guiyang")
    rated = rating_event(instance, "satisfied", datetime(2026, 11, 2, tzinfo=UTC), "demo").body
    validator = _in_document(
        "#/webhooks/xieshang.proposal.public_rated/post/requestBody/content/"
        "application~1cloudevents+json/schema"
    )
    assert [e.message for e in validator.iter_errors(rated)] == []
    assert rated["type"] == "xieshang.proposal.public_rated"
    assert not validator.is_valid(engine.store.outbox()[0].body)
    wrong = json.loads(json.dumps(rated))
    wrong["data"]["rating"] = "very_satisfied"
    assert not validator.is_valid(wrong)


# -- a generated client ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """A client generated by openapi-python-client from the document a server serves, with no
    network and no formatter run, imported from a temporary directory."""
    root = tmp_path_factory.mktemp("client")
    with serve_in_thread(create_app(Engine(MemoryStore(), bundled()), MemoryTokenStore())) as base:
        served = httpx.get(f"{base}/openapi.json").json()
    (root / "openapi.json").write_text(json.dumps(served, ensure_ascii=False), encoding="utf-8")
    config = (
        "post_hooks: []\n"
        "project_name_override: xieshang-contract-client\n"
        f"package_name_override: {PACKAGE}\n"
    )
    (root / "config.yaml").write_text(config, encoding="utf-8")
    generated = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(root / "openapi.json"),
            "--output-path",
            str(root / "out"),
            "--config",
            str(root / "config.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = generated.stdout + generated.stderr
    assert generated.returncode == 0, output
    assert "Warning" not in output and "Unable" not in output, output
    sys.path.insert(0, str(root / "out"))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root / "out"))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _operation(tag: str, operation_id: str) -> Any:
    """The generated module of an operation: ``api/<tag>/<operation id>.py``."""
    return importlib.import_module(f"{PACKAGE}.api.{tag}.{operation_id}")


def test_a_generated_client_drives_a_proposal_to_filed(
    client_package: ModuleType, sql_url: str
) -> None:
    """With the generated client's typed models only, a member starts and submits a proposal
    and the committee files it; a refusal comes back as a typed problem, the history as typed
    rows with their actors and times, and the workflow's schemas as typed values."""
    models = importlib.import_module(f"{PACKAGE}.models")
    start_instance, fire_trigger = (_operation("instances", n) for n in ("start_instance", "fire"))
    get_history = _operation("instances", "get_history")
    get_workflow_schema = _operation("workflows", "get_workflow_schema")
    store, tokens = open_store(sql_url), token_store_for(sql_url)
    engine = Engine(store, bundled())
    try:
        with ExitStack() as stack:
            base = stack.enter_context(serve_in_thread(create_app(engine, tokens)))
            assert (
                httpx.get(f"{base}/openapi.json").json()["paths"].keys() == DOCUMENT["paths"].keys()
            )
            client = client_package.AuthenticatedClient
            member = client(base_url=base, token=tokens.create(Actor.parse("m1:member@guiyang")))
            committee = client(
                base_url=base, token=tokens.create(Actor.parse("c1:proposal_committee@guiyang"))
            )
            stack.enter_context(member)
            stack.enter_context(committee)

            def fire(who: Any, iid: str, trigger: str, payload: dict[str, Any]) -> Any:
                body = models.FireIn(
                    trigger=models.FireInTrigger(trigger),
                    payload=models.JsonObject.from_dict(payload),
                )
                return fire_trigger.sync_detailed(iid, client=who, body=body)

            start = models.ProposalStart(
                workflow=models.ProposalStartWorkflow.PROPOSAL,
                data=models.ProposalStartData(
                    title="关于加强社区养老服务的提案", first_proposer="m1"
                ),
            )
            started = start_instance.sync_detailed(client=member, body=start)
            assert started.status_code == 201
            created = started.parsed
            assert isinstance(created, models.InstanceOut)
            assert (created.state, created.version, created.workflow) == ("draft", 1, "proposal")
            assert (
                isinstance(created.created_at, datetime)
                and created.created_at.utcoffset() is not None
            )
            assert created.data["first_proposer"] == "m1"
            iid = created.id

            bad = fire(member, iid, "submit", {"category": "sports"}).parsed
            assert isinstance(bad, models.ProblemOut)
            assert (bad.status, bad.code) == (422, "invalid-payload")
            assert [(e.field, isinstance(e, models.FieldErrorOut)) for e in bad.errors] == [
                ("category", True)
            ]
            assert fire(member, iid, "submit", {"category": "society"}).parsed.state == "submitted"
            early = fire(committee, iid, "file", {"number": "2026-001"})
            assert early.status_code == 409
            refused = early.parsed
            assert (refused.code, refused.trigger, refused.state) == (
                "transition-not-allowed",
                "file",
                "submitted",
            )
            assert "start_review" in refused.allowed
            assert fire(committee, iid, "start_review", {}).parsed.state == "under_review"
            filed = fire(committee, iid, "file", {"number": "2026-001"}).parsed
            assert (filed.state, filed.version, filed.data["number"]) == ("filed", 4, "2026-001")

            rows = get_history.sync(iid, client=committee)
            assert [(r.seq, r.trigger, r.target) for r in rows] == [
                (1, "start", "draft"),
                (2, "submit", "submitted"),
                (3, "start_review", "under_review"),
                (4, "file", "filed"),
            ]
            assert [(r.actor.id, r.actor.roles, r.actor.org) for r in rows] == [
                ("m1", ["member"], "guiyang"),
                ("m1", ["member"], "guiyang"),
                ("c1", ["proposal_committee"], "guiyang"),
                ("c1", ["proposal_committee"], "guiyang"),
            ]
            assert all(isinstance(r.occurred_at, datetime) for r in rows)
            assert rows[3].payload["number"] == "2026-001"

            schemas = get_workflow_schema.sync("proposal", client=member)
            assert isinstance(schemas, models.WorkflowSchemasOut)
            assert schemas.payloads["file"]["required"] == ["number"]
            assert schemas.start["required"] == ["title", "first_proposer"]
    finally:
        for closable in (store, tokens):
            close = getattr(closable, "close", None)
            if callable(close):
                close()
