"""The instance routes: start, read, fire, what may fire, history, children, and the queries
over the caller's org (``GET /instances``).

Every route sees only what the workflows' ``read:`` rules let the caller read; any other
instance is answered as one that does not exist (404). A command's answer carries the
instance's version as its ETag, and ``If-Match`` makes a fire conditional on it.
"""

import json
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Response

from xieshang import Actor, Engine, Instance
from xieshang import Query as StoreQuery
from xieshang.shared import IDENT, input_errors

from .auth import Authenticate
from .bodies import CURSOR, ETAG, NO_NUL, page_cursor
from .idempotency import command_id, keyed
from .problems import ApiProblem, documented
from .runner import StepRunner
from .schemas import AvailabilityOut, FireIn, HistoryEntryOut, InstanceOut, PageOut, StartIn

__all__ = ["add_instance_routes"]


def _answer(instance: Instance, *, status_code: int = 200, location: bool = False) -> Response:
    """A command's answer: the instance as ``InstanceOut`` (validated and written here, where
    the step ran: a dict returned to FastAPI is validated on a thread of its own, one more
    hand-off per request), its version as the ETag."""
    headers = {"ETag": f'"{instance.version}"'}
    if location:
        headers["Location"] = f"/instances/{instance.id}"
    body = InstanceOut.model_validate(instance.to_dict()).model_dump_json(by_alias=True)
    return Response(body, status_code, headers, media_type="application/json")


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


def add_instance_routes(api: FastAPI, engine: Engine, caller: Authenticate) -> None:
    """Add the ``/instances`` routes to ``api``, for the actor ``caller`` authenticates."""
    Caller = Annotated[Actor, Depends(caller)]
    run_step = StepRunner(engine.store)  # on the event loop for a store of this machine
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

    @api.post(
        "/instances",
        status_code=201,
        operation_id="start_instance",
        response_model=InstanceOut,
        tags=["instances"],
        responses=documented(401, 403, 404, 409, 413, 422),
    )
    async def start(body: StartIn, actor: Caller, idempotency_key: IdemKey = None) -> Response:
        """Start an instance in the caller's org, as the caller."""

        def step() -> Response:
            with keyed(idempotency_key):
                instance = engine.start(
                    body.workflow,
                    body.data,
                    actor,
                    org=actor.org,
                    command_id=command_id(actor, idempotency_key),
                )
            return _answer(instance, status_code=201, location=True)

        return await run_step(step)

    @api.get(
        "/instances/{instance_id}",
        response_model=InstanceOut,
        operation_id="get_instance",
        tags=["instances"],
        responses=documented(401, 404),
    )
    def get_instance(instance_id: str, actor: Caller) -> Response:
        """The instance; its ETag is its version."""
        # read past the store's cache: another process may have moved it, and a stale ETag
        # would send a careful client round a loop of 412s
        return _answer(engine.get(instance_id, actor, fresh=True))

    @api.post(
        "/instances/{instance_id}/fire",
        operation_id="fire",
        response_model=InstanceOut,
        tags=["instances"],
        responses=documented(401, 403, 404, 409, 412, 413, 422),
    )
    async def fire(
        instance_id: str,
        body: FireIn,
        actor: Caller,
        if_match: IfMatch = None,
        idempotency_key: IdemKey = None,
    ) -> Response:
        """Fire a trigger as the caller. With If-Match, only on that version (else 412)."""
        expected = _expected_version(if_match)

        def step() -> Response:
            with keyed(idempotency_key):
                instance = engine.fire(
                    instance_id,
                    body.trigger,
                    actor,
                    body.payload,
                    reason=body.reason,
                    expected_version=expected,
                    command_id=command_id(actor, idempotency_key),
                )
            return _answer(instance)

        return await run_step(step)

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
