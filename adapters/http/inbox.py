"""``GET /inbox``: the instances the caller may act on now, a page at a time, each with the
triggers it may fire on it (see ``Query.actionable_by``)."""

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query
from pydantic import BaseModel, ConfigDict, StringConstraints

from xieshang import Actor, Engine
from xieshang import Query as StoreQuery

from .auth import Authenticate
from .bodies import CURSOR, NO_NUL, page_cursor
from .problems import documented
from .schemas import InstanceOut

__all__ = ["InboxItemOut", "InboxPageOut", "add_inbox_routes"]

StateName = Annotated[str, StringConstraints(max_length=100, pattern=NO_NUL)]


class InboxItemOut(InstanceOut):
    """An instance in the caller's inbox, and the triggers the caller may fire on it now (some
    only with a suitable payload: ``GET /instances/{id}/available`` says which and why)."""

    may_fire: list[str]


class InboxPageOut(BaseModel):
    """One page of the inbox; pass ``next_cursor`` as ``cursor`` for the next page."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [], "next_cursor": None}]})

    items: list[InboxItemOut]
    next_cursor: str | None


def add_inbox_routes(api: FastAPI, engine: Engine, caller: Authenticate) -> None:
    """Add ``GET /inbox`` to ``api``, for the actor ``caller`` authenticates."""

    @api.get(
        "/inbox",
        response_model=InboxPageOut,
        tags=["queries"],
        responses=documented(401, 422),
    )
    def inbox(
        actor: Annotated[Actor, Depends(caller)],
        workflow: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
        state: Annotated[
            list[StateName] | None,
            Query(max_length=50, description="any of these states (repeat the parameter)"),
        ] = None,
        unit: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
        overdue: bool | None = None,
        limit: Annotated[int, Query(ge=1, le=500, description="page size")] = 100,
        cursor: Annotated[
            str | None,
            Query(max_length=300, pattern=CURSOR, description="next_cursor of a page"),
        ] = None,
    ) -> dict[str, Any]:
        """The caller's org's instances the caller may act on now, oldest first, each with the
        triggers it may fire; only what its read rules let it read. ``state`` filters by any
        of several states, ``unit`` by the instance's own unit."""
        page = engine.query(
            StoreQuery(
                workflow=workflow,
                states=state,
                unit=unit,
                overdue=overdue,
                org=actor.org,
                limit=limit,
                after=page_cursor(cursor),
                actionable_by=actor,
            )
        )
        items = [{**i.to_dict(), "may_fire": list(page.triggers[i.id])} for i in page.items]
        return {"items": items, "next_cursor": page.next_cursor}
