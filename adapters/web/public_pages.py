"""The public page, with no sign-in: each proposal's public fields and its progress from public
history rows, a search by number, title and unit, the satisfaction of the closed ones, and the
public's own rating (网民满意度) of each replied one.

It reads as an actor of the org with no role and no unit, so the workflows' ``read:`` rules
decide what it sees (the ``see`` level: public fields, public rows, payloads cut); it then keeps
only the fields marked ``public: true`` and the rows marked public, whatever a rule granted.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from xieshang import (
    Actor,
    HistoryEntry,
    Instance,
    InvalidPayload,
    NotFound,
    PageCursor,
    Query,
    Usage,
)
from xieshang.adapters.reports.labels import REPLIED_OR_LATER, UNIT_ZH

from .context import BROWSER_COOKIE, Pages, first, form_values, new_secret
from .ratings import RATINGS, RatingRefused

__all__ = ["PUBLIC_ID", "add_public_pages", "public_actor"]

PUBLIC_ID = "public:anonymous"  # no token's actor can have this id (":" separates the role)
SCAN_PAGES = 20
SCAN_SIZE = 200


def public_actor(org: str) -> Actor:
    """The reader the public page reads as: of ``org``, with no role and no unit."""
    return Actor.of(PUBLIC_ID, org=org)


def browser_csrf(browser: str) -> str:
    """The CSRF value of a browser's forms: only a page that read its (HttpOnly) id has it."""
    return hashlib.sha256(b"csrf:" + browser.encode()).hexdigest()


@dataclass
class PublicItem:
    """A proposal as the public page shows it."""

    instance: Instance
    data: dict[str, Any]
    progress: list[HistoryEntry]
    ratable: bool
    rated: bool
    counts: dict[str, int]


def _public(pages: Pages, instance: Instance, reader: Actor) -> tuple[dict[str, Any], list[Any]]:
    fields = set(pages.labels.public_fields(instance.workflow))
    data = {k: v for k, v in instance.data.items() if k in fields}
    rows = [e for e in pages.engine.history(instance.id, reader) if e.visibility == "public"]
    return data, rows


def _matches(instance: Instance, q: str) -> bool:
    d = instance.data
    units = d.get("units") or []
    texts = [d.get("number"), d.get("title"), d.get("lead_unit"), *units]
    texts += [UNIT_ZH.get(str(u), "") for u in [d.get("lead_unit"), *units] if u]
    needle = q.casefold()
    return any(needle in str(t).casefold() for t in texts if t)


def _scan(
    pages: Pages, reader: Actor, workflow: str, q: str, after: str | None
) -> tuple[list[Instance], str | None]:
    """A page of matching instances, and where the next page starts (None: no more)."""
    size = pages.options.page_size
    out: list[Instance] = []
    for _ in range(SCAN_PAGES):
        page = pages.engine.query(
            Query(
                workflow=workflow,
                org=reader.org,
                limit=SCAN_SIZE,
                after=PageCursor.parse(after) if after is not None else None,
            ),
            actor=reader,
        )
        for i in page.items:
            if not q or _matches(i, q):
                out.append(i)
                if len(out) == size:
                    return out, PageCursor.of(i)
        if page.next_cursor is None:
            return out, None
        after = page.next_cursor
    return out, after


def add_public_pages(api: FastAPI, pages: Pages) -> None:
    """Add ``GET /public/{org}`` and ``POST /public/{org}/rate/{id}``."""

    def _browser(request: Request) -> tuple[str, bool]:
        known = request.cookies.get(BROWSER_COOKIE)
        return (known, False) if known and len(known) < 100 else (new_secret(), True)

    def _items(request: Request, org: str, browser: str) -> dict[str, Any]:
        params = request.query_params
        workflows = pages.options.public_workflows
        workflow = params.get("workflow") or workflows[0]
        if workflow not in workflows:
            workflow = workflows[0]
        q = (params.get("q") or "").strip()[:100]
        reader = public_actor(org)
        try:
            found, next_cursor = _scan(pages, reader, workflow, q, params.get("cursor") or None)
        except Usage:  # a cursor no page gave
            found, next_cursor = [], None
        ids = [i.id for i in found]
        rated = pages.ratings.rated(browser, ids)
        counts = pages.ratings.counts(ids)
        items = []
        for i in found:
            data, rows = _public(pages, i, reader)
            items.append(
                PublicItem(i, data, rows, i.state in REPLIED_OR_LATER, i.id in rated, counts[i.id])
            )
        return {
            "org": org,
            "items": items,
            "q": q,
            "workflow": workflow,
            "workflows": workflows,
            "next_cursor": next_cursor,
            "ratings": RATINGS,
            "browser_csrf": browser_csrf(browser),
        }

    @api.get("/public/{org}", include_in_schema=False, response_class=HTMLResponse)
    def public_page(org: str, request: Request) -> Response:
        browser, new = _browser(request)
        name = "_public_list.html" if request.headers.get("HX-Request") else "public.html"
        response = pages.render(request, name, **_items(request, org, browser))
        if new:
            pages.set_cookie(request, response, BROWSER_COOKIE, browser)
        return response

    @api.post("/public/{org}/rate/{instance_id}", include_in_schema=False)
    async def rate(org: str, instance_id: str, request: Request) -> Response:
        values = await form_values(request)
        browser = request.cookies.get(BROWSER_COOKIE) or ""
        sent = first(values, "csrf") or ""
        if not browser or not hmac.compare_digest(sent.encode(), browser_csrf(browser).encode()):
            return pages.refused_csrf(request, None)
        htmx = request.headers.get("HX-Request") == "true"
        rating = first(values, "rating") or ""
        address = request.client.host if request.client else "unknown"
        status, message, ok = 200, "感谢您的评价 / Thank you for your rating", True
        try:
            await run_in_threadpool(_rate, pages, org, instance_id, browser, address, rating)
        except NotFound:
            status, ok = 404, False
            message = "没有这件可评价的提案 / No such proposal to rate"
        except InvalidPayload:
            status, ok = 422, False
            message = "请选择：" + "、".join(RATINGS.values()) + " / Choose a rating"
        except RatingRefused as e:
            status, ok = (429 if e.code == "rate-limited" else 409), False
            message = e.message
        if htmx:
            return pages.render(
                request, "_rating_result.html", ok=ok, message=message, instance_id=instance_id
            )
        if ok:
            return RedirectResponse(f"/public/{org}#p-{instance_id}", status_code=303)
        return pages.render(
            request, "error.html", status, title="未能评价 / Not rated", message=message
        )


def _rate(
    pages: Pages, org: str, instance_id: str, browser: str, address: str, rating: str
) -> None:
    instance = pages.engine.get(instance_id, public_actor(org))
    ratable = instance.state in REPLIED_OR_LATER
    if instance.workflow not in pages.options.public_workflows or not ratable:
        raise NotFound("ratable proposal", instance_id)
    pages.ratings.rate(instance, browser, address, rating)
