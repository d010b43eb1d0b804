"""我的待办: every instance the signed-in actor may act on now, grouped by workflow, filtered by
workflow, state, unit and overdue, a page at a time (the engine's inbox query, as
``GET /inbox``). With ``all=1``, every instance the actor may read instead."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from xieshang import Query, Usage

from .context import Pages

__all__ = ["add_inbox_pages"]


def _filters(request: Request) -> dict[str, Any]:
    q = request.query_params
    overdue = {"1": True, "0": False}.get(q.get("overdue", ""))
    return {
        "workflow": q.get("workflow") or None,
        "state": q.get("state") or None,
        "unit": q.get("unit") or None,
        "overdue": overdue,
        "cursor": q.get("cursor") or None,
        "all": q.get("all") == "1",
    }


def add_inbox_pages(api: FastAPI, pages: Pages) -> None:
    """Add ``GET /`` (the inbox; with ``HX-Request``, only its list)."""

    @api.get("/", include_in_schema=False, response_class=HTMLResponse)
    def inbox(request: Request) -> Response:
        session = pages.session(request)
        if session is None:
            return pages.to_signin()
        actor = session.actor
        f = _filters(request)
        error = None
        try:
            query = Query(
                workflow=f["workflow"],
                states=[f["state"]] if f["state"] else None,
                unit=f["unit"],
                overdue=f["overdue"],
                org=actor.org,
                limit=pages.options.page_size,
                after=f["cursor"],
                actionable_by=None if f["all"] else actor,
            )
            # "all": every instance the actor may read, not only those it may act on now
            page = pages.engine.query(query, actor=actor if f["all"] else None)
            items, triggers, next_cursor = page.items, page.triggers, page.next_cursor
        except Usage as e:
            error = e.message
            items, triggers, next_cursor = [], {}, None
        groups: dict[str, list[Any]] = {}
        for i in items:
            groups.setdefault(i.workflow, []).append(i)
        workflows = sorted(w.id for w in pages.engine.registry)
        shown = [f["workflow"]] if f["workflow"] in workflows else workflows
        states = sorted(
            {s for w in shown for s in pages.labels.definition(w).states}  # type: ignore[union-attr]
        )
        next_href = None
        if next_cursor is not None:
            kept = {k: v for k, v in request.query_params.items() if k != "cursor" and v}
            next_href = "/?" + urlencode({**kept, "cursor": str(next_cursor)})
        name = "_inbox_list.html" if request.headers.get("HX-Request") else "inbox.html"
        return pages.render(
            request,
            name,
            session=session,
            groups=groups,
            triggers=triggers,
            next_href=next_href,
            filters=f,
            workflows=workflows,
            states=states,
            error=error,
            now=pages.engine.clock.now(),
        )
