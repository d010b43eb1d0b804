"""The FastAPI application: workflows, instances, queries, audit, health and live events.

Every route acts as the actor of the bearer token and sees its org only, and of that only what
the workflows' ``read:`` rules let it read: any other instance is answered as one that does not
exist (404, the same body). Handlers are plain
functions (run in the thread pool), because the engine and its stores are synchronous.
"""

import json
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from xieshang import (
    Actor,
    Definition,
    Engine,
    Instance,
    NotFound,
    PageCursor,
    Usage,
    XieshangError,
)
from xieshang import Query as StoreQuery
from xieshang.adapters.common import MEDIA_TYPES, DiagramFormat, draw
from xieshang.shared import IDENT, input_errors, schema_json

from .admin import add_token_routes
from .auth import TokenStore
from .bodies import CURSOR, ETAG, NO_NUL, install_request_schemas, page_cursor
from .contracts import install_contracts, operation_name
from .docs import install_docs
from .events import event_stream
from .idempotency import command_id, keyed
from .inbox import add_inbox_routes
from .limits import DEFAULT_BODY_TIMEOUT, BodyLimit, BodyTimeout
from .problems import ApiProblem, documented, install_handlers, problem_response
from .schemas import (
    AvailabilityOut,
    FireIn,
    HealthOut,
    HistoryEntryOut,
    InstanceOut,
    PageOut,
    StartIn,
    VerifyIn,
    VerifyOut,
    WorkflowOut,
    WorkflowSchemasOut,
)
from .workflow_schemas import workflow_schemas

__all__ = ["create_app"]

AUDIT_ROLES = frozenset({"auditor", "admin"})
REALM = 'Bearer realm="xieshang"'
DOT_TIMEOUT_SECONDS = 20


def _etag(response: Response, instance: Instance) -> dict[str, Any]:
    response.headers["ETag"] = f'"{instance.version}"'
    return instance.to_dict()


def _expected_version(if_match: str | None) -> int | None:
    """The version an If-Match names; a value no version can match gives 412 at once."""
    if if_match is None or if_match.strip() == "*":
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise ApiProblem(
            412,
            "precondition-failed",
            f'If-Match {if_match!r} names no version (expected an ETag such as "3")',
        )
    return int(text)


def _field_value(text: str | None) -> Any:
    """A query's value: JSON (3, true, "A"), else (or when JSON gives what no field can hold,
    such as NaN or a NUL character) the text itself."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return text
    return text if input_errors(value) else value


def _page(engine: Engine, q: StoreQuery, actor: Actor) -> dict[str, Any]:
    page = engine.query(q, actor=actor)
    return {"items": [i.to_dict() for i in page.items], "next_cursor": page.next_cursor}


def _drawn(definition: Definition, fmt: DiagramFormat) -> bytes:
    try:
        return draw(definition, fmt, timeout=DOT_TIMEOUT_SECONDS)
    except Usage as e:  # only graphviz missing
        raise ApiProblem(
            501, "graphviz-missing", "SVG needs graphviz 'dot' on the server; use format=mermaid"
        ) from e
    except XieshangError as e:
        raise ApiProblem(501, "graphviz-failed", "graphviz 'dot' could not draw it") from e


def create_app(
    engine: Engine,
    tokens: TokenStore,
    *,
    max_body_bytes: int = 1_000_000,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
) -> FastAPI:
    """The HTTP API over ``engine``, authenticating with ``tokens``.

    Args:
        engine: the engine every route drives.
        tokens: where bearer tokens are looked up.
        max_body_bytes: larger request bodies get 413.
        body_timeout: seconds a request's body may take to arrive after its head; then 408.

    Returns:
        The FastAPI application.
    """
    api = FastAPI(
        title="xieshang",
        version="0.1.0",
        description=(
            "Consultation workflows (协商) over HTTP. Authenticate with `Authorization: Bearer "
            "<token>` (issued by `xieshang tokens create`). Every command acts as the token's "
            "actor and every read sees the token's org only. Errors are RFC 9457 "
            "`application/problem+json` with a stable `code`."
        ),
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=operation_name,
    )
    install_handlers(api)
    install_docs(api)
    bearer = HTTPBearer(auto_error=False, description="a token from `xieshang tokens create`")

    def caller(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Actor:
        if credentials is None:
            raise ApiProblem(
                401,
                "unauthenticated",
                "a bearer token is required",
                headers={"WWW-Authenticate": REALM},
            )
        actor = tokens.lookup(credentials.credentials)
        if actor is None:
            raise ApiProblem(
                401,
                "invalid-token",
                "the bearer token is invalid or revoked",
                headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
            )
        return actor

    Caller = Annotated[Actor, Depends(caller)]
    IfMatch = Annotated[
        str | None,
        Header(
            alias="If-Match",
            pattern=ETAG,
            description='the ETag of the version you read, e.g. "3" (or *)',
        ),
    ]
    IdemKey = Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=200,
            description="a retried request with the same key is applied once",
        ),
    ]

    # -- workflows ---------------------------------------------------------------------------

    @api.get(
        "/workflows",
        response_model=list[WorkflowOut],
        operation_id="list_workflows",
        tags=["workflows"],
        responses=documented(401),
    )
    def list_workflows(actor: Caller) -> list[dict[str, Any]]:
        """The workflows this deployment runs (newest version of each)."""
        return [
            {
                "id": wf.id,
                "version": wf.definition.version,
                "title": wf.definition.title.model_dump(),
                "description": wf.definition.description,
                "hash": wf.hash,
                "states": list(wf.definition.states),
                "triggers": wf.definition.triggers(),
            }
            for wf in sorted(engine.registry, key=lambda w: w.id)
        ]

    @api.get(
        "/workflows/{workflow_id}",
        response_model=dict[str, Any],
        operation_id="get_workflow",
        tags=["workflows"],
        responses=documented(401, 404, 422),
    )
    def get_workflow(
        workflow_id: str,
        actor: Caller,
        version: Annotated[int | None, Query(ge=1)] = None,
    ) -> dict[str, Any]:
        """The workflow's definition, as JSON with the YAML spellings."""
        return engine.registry.get(workflow_id, version).definition.to_json()

    @api.get(
        "/workflows/{workflow_id}/schema",
        operation_id="get_workflow_schema",
        response_model=WorkflowSchemasOut,
        tags=["workflows"],
        responses=documented(401, 404, 422),
    )
    def get_schema(
        workflow_id: str,
        actor: Caller,
        version: Annotated[int | None, Query(ge=1)] = None,
    ) -> dict[str, Any]:
        """The workflow's JSON Schemas: its instances' data, each trigger's payload, the data a
        start takes."""
        return workflow_schemas(engine.registry.get(workflow_id, version).definition)

    @api.get(
        "/schemas/workflow-format",
        operation_id="get_workflow_format_schema",
        response_model=dict[str, Any],
        tags=["workflows"],
        responses=documented(401),
    )
    def get_format_schema(actor: Caller) -> dict[str, Any]:
        """The JSON Schema of the workflow definition format (for editors of workflow files)."""
        return schema_json()

    @api.get(
        "/workflows/{workflow_id}/diagram",
        operation_id="get_diagram",
        tags=["workflows"],
        response_class=Response,
        responses={
            200: {
                "description": "Mermaid or Graphviz dot text, or an SVG picture",
                "content": {
                    "text/plain": {"schema": {"type": "string"}},
                    "text/vnd.graphviz": {"schema": {"type": "string"}},
                    "image/svg+xml": {"schema": {"type": "string"}},
                },
            },
            **documented(401, 404, 422, 501),
        },
    )
    def get_diagram(
        workflow_id: str,
        actor: Caller,
        format: Annotated[DiagramFormat, Query()] = DiagramFormat.mermaid,
    ) -> Response:
        """The workflow drawn as Mermaid or Graphviz dot text, or (with graphviz on the server)
        SVG."""
        definition = engine.registry.get(workflow_id).definition
        return Response(_drawn(definition, format), media_type=MEDIA_TYPES[format])

    # -- instances ---------------------------------------------------------------------------

    @api.post(
        "/instances",
        status_code=201,
        operation_id="start_instance",
        response_model=InstanceOut,
        tags=["instances"],
        responses=documented(401, 403, 404, 409, 413, 422),
    )
    def start(
        body: StartIn, response: Response, actor: Caller, idempotency_key: IdemKey = None
    ) -> dict[str, Any]:
        """Start an instance in the caller's org, as the caller."""
        with keyed(idempotency_key):
            instance = engine.start(
                body.workflow,
                body.data,
                actor,
                org=actor.org,
                command_id=command_id(actor, idempotency_key),
            )
        response.headers["Location"] = f"/instances/{instance.id}"
        return _etag(response, instance)

    @api.get(
        "/instances/{instance_id}",
        response_model=InstanceOut,
        operation_id="get_instance",
        tags=["instances"],
        responses=documented(401, 404),
    )
    def get_instance(instance_id: str, response: Response, actor: Caller) -> dict[str, Any]:
        """The instance; its ETag is its version."""
        # read past the store's cache: another process may have moved it, and a stale ETag
        # would send a careful client round a loop of 412s
        return _etag(response, engine.get(instance_id, actor, fresh=True))

    @api.post(
        "/instances/{instance_id}/fire",
        operation_id="fire",
        response_model=InstanceOut,
        tags=["instances"],
        responses=documented(401, 403, 404, 409, 412, 413, 422),
    )
    def fire(
        instance_id: str,
        body: FireIn,
        response: Response,
        actor: Caller,
        if_match: IfMatch = None,
        idempotency_key: IdemKey = None,
    ) -> dict[str, Any]:
        """Fire a trigger as the caller. With If-Match, only on that version (else 412)."""
        with keyed(idempotency_key):
            instance = engine.fire(
                instance_id,
                body.trigger,
                actor,
                body.payload,
                reason=body.reason,
                expected_version=_expected_version(if_match),
                command_id=command_id(actor, idempotency_key),
            )
        return _etag(response, instance)

    @api.get(
        "/instances/{instance_id}/available",
        operation_id="available_triggers",
        response_model=list[AvailabilityOut],
        tags=["instances"],
        responses=documented(401, 404),
    )
    def available(instance_id: str, actor: Caller) -> list[dict[str, Any]]:
        """The triggers that can fire now, and whether the caller may fire each (and why not)."""
        return [a.to_dict() for a in engine.available(instance_id, actor)]

    @api.get(
        "/instances/{instance_id}/history",
        operation_id="get_history",
        response_model=list[HistoryEntryOut],
        tags=["instances"],
        responses=documented(401, 404),
    )
    def history(instance_id: str, actor: Caller) -> list[dict[str, Any]]:
        """The instance's history, oldest first; the first row is its creation."""
        return [e.to_dict() for e in engine.history(instance_id, actor)]

    Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
    Cursor = Annotated[
        str | None, Query(max_length=300, pattern=CURSOR, description="next_cursor of a page")
    ]
    Text = Annotated[str | None, Query(max_length=100, pattern=NO_NUL)]

    @api.get(
        "/instances/{instance_id}/children",
        operation_id="list_children",
        response_model=PageOut,
        tags=["instances"],
        responses=documented(401, 404, 422),
    )
    def children(
        instance_id: str, actor: Caller, limit: Limit = 100, cursor: Cursor = None
    ) -> dict[str, Any]:
        """The instance's child instances (one per handling unit ...), by creation."""
        engine.get(instance_id, actor)
        return _page(
            engine,
            StoreQuery(
                parent_id=instance_id, org=actor.org, limit=limit, after=page_cursor(cursor)
            ),
            actor,
        )

    @api.get(
        "/instances",
        operation_id="list_instances",
        response_model=PageOut,
        tags=["queries"],
        responses=documented(401, 422),
    )
    def query(
        actor: Caller,
        workflow: Text = None,
        state: Text = None,
        org: Annotated[
            str | None,
            Query(max_length=100, pattern=NO_NUL, description="only the caller's own org has any"),
        ] = None,
        unit: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
        overdue: bool | None = None,
        final: bool | None = None,
        field: Annotated[
            str | None, Query(max_length=64, pattern=IDENT, description="a data field's name")
        ] = None,
        value: Annotated[
            str | None,
            Query(
                max_length=500,
                pattern=NO_NUL,
                description='its value: JSON (3, true, "A") or a bare string',
            ),
        ] = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        """Instances of the caller's org by workflow, state, unit, overdue or a data field."""
        after = page_cursor(cursor)
        if org is not None and org != actor.org:
            return {"items": [], "next_cursor": None}
        return _page(
            engine,
            StoreQuery(
                workflow=workflow,
                state=state,
                org=actor.org,
                unit=unit,
                overdue=overdue,
                final=final,
                field=field,
                value=_field_value(value),
                limit=limit,
                after=after,
            ),
            actor,
        )

    # -- audit, health -----------------------------------------------------------------------

    @api.post(
        "/audit/verify",
        operation_id="verify",
        response_model=VerifyOut,
        tags=["audit"],
        responses=documented(401, 403, 404, 413, 422),
    )
    def verify(body: VerifyIn, actor: Caller) -> dict[str, Any]:
        """Check the hash chain and replay of one instance, or of all the org's (auditor, admin)."""
        if not actor.roles & AUDIT_ROLES:
            raise ApiProblem(
                403,
                "forbidden",
                f"verifying histories needs one of the roles {sorted(AUDIT_ROLES)}",
                allowed=sorted(AUDIT_ROLES),
            )
        if body.instance_id is not None:
            # a chain check shows no data: the org decides, not the workflow's read rules
            found = engine.store.load(body.instance_id, fresh=True)
            if found is None or found.org != actor.org:
                raise NotFound("instance", body.instance_id)
            return {"checked": 1, "problems": engine.verify(body.instance_id)}
        checked, problems = 0, []
        after: PageCursor | None = None
        while True:
            page = engine.store.query(StoreQuery(org=actor.org, limit=500, after=after))
            for i in page:
                checked += 1
                problems += engine.verify(i.id)
            if len(page) < 500:
                return {"checked": checked, "problems": problems}
            after = PageCursor.of(page[-1])

    @api.get("/health", operation_id="health", response_model=HealthOut, tags=["health"])
    def health() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @api.get(
        "/ready",
        operation_id="ready",
        response_model=HealthOut,
        tags=["health"],
        responses=documented(503),
    )
    def ready() -> Any:
        """The store answers too."""
        try:
            engine.store.query(StoreQuery(limit=1))
        except Exception:  # any store failure means not ready: logged, never shown
            from .problems import log

            log.exception("readiness check failed")
            return problem_response(
                503, "store-unavailable", "the store does not answer", instance="/ready"
            )
        return {"status": "ok"}

    # -- live events -------------------------------------------------------------------------

    @api.get(
        "/events/stream",
        operation_id="stream_events",
        tags=["events"],
        response_class=Response,
        responses={
            200: {
                "description": "Server-sent events: one CloudEvent (JSON) per message, as the "
                "document's webhooks describe it; the SSE id resumes the stream through "
                "Last-Event-ID.",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            **documented(401, 422),
        },
    )
    async def stream(
        request: Request,
        actor: Caller,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=40)] = None,
    ) -> Response:
        """The caller's org's events as they are committed (from the outbox)."""
        return await event_stream(request, engine, actor, last_event_id)

    add_inbox_routes(api, engine, caller)
    add_token_routes(api, tokens, caller)
    install_request_schemas(api, engine.registry)
    install_contracts(api, engine.registry)
    api.add_middleware(BodyTimeout, seconds=body_timeout)
    api.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return api
