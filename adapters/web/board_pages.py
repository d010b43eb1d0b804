"""督办 board: the signed-in actor's overdue and due-soon instances by unit and workflow, and
the year's reports (those of ``xieshang report``, produced for the actor) with xlsx download."""

from __future__ import annotations

import tempfile
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from xieshang import Actor, Instance, Query
from xieshang.adapters.reports import KINDS, report
from xieshang.adapters.reports.labels import UNIT_ZH
from xieshang.adapters.sql.tables import instances as instances_table

from .context import Pages

__all__ = ["add_board_pages", "unit_of"]

SCAN_LIMIT = 5000  # open instances the board reads at most (then it says it stopped)
PAGE = 500
SHOWN = 100
REPORT_ZH = {
    "review": "提案审查",
    "handling": "提案办理",
    "plan": "协商计划",
    "opinions": "社情民意",
    "key_proposals": "重点提案",
    "appraisal": "民主评议",
    "micro": "微协商",
    "online": "网络协商",
    "public_ratings": "网民满意度",
}


def unit_of(instance: Instance) -> str:
    """The unit an instance is in the hands of: its own, its lead unit, or its units."""
    data = instance.data
    units = instance.unit or data.get("lead_unit") or data.get("department") or data.get("units")
    if isinstance(units, list):
        return "、".join(UNIT_ZH.get(str(u), str(u)) for u in units) or "—"
    return UNIT_ZH.get(str(units), str(units)) if units else "—"


def _open_instances(pages: Pages, actor: Actor) -> tuple[list[Instance], bool]:
    out: list[Instance] = []
    after = None
    while len(out) < SCAN_LIMIT:
        page = pages.engine.query(
            Query(org=actor.org, final=False, limit=PAGE, after=after), actor=actor
        )
        out.extend(page.items)
        if page.next_cursor is None:
            return out, False
        after = page.next_cursor
    return out, True


def default_year(pages: Pages, org: str | None) -> int:
    """The year of the org's newest instance (the clock's year when it has none)."""
    db = pages.db
    if db is not None:
        t = instances_table
        with db.connect() as conn:
            newest = conn.execute(sa.select(sa.func.max(t.c.created_at)).where(t.c.org == org))
            value = newest.scalar_one_or_none()
        if value:
            return int(str(value)[:4])
    return pages.engine.clock.now().year


def add_board_pages(api: FastAPI, pages: Pages) -> None:
    """Add ``GET /board``, ``GET /board/report/{kind}`` and ``GET /board/report/{kind}.xlsx``."""

    def _year(request: Request, org: str | None) -> int:
        text = request.query_params.get("year", "")
        return (
            int(text) if text.isdigit() and 2000 <= int(text) <= 2100 else default_year(pages, org)
        )

    @api.get("/board", include_in_schema=False, response_class=HTMLResponse)
    def board(request: Request) -> Response:
        session = pages.session(request)
        if session is None:
            return pages.to_signin()
        actor = session.actor
        now = pages.engine.clock.now()
        soon = now + timedelta(days=pages.options.due_soon_days)
        items, stopped = _open_instances(pages, actor)
        overdue = [i for i in items if i.overdue]
        due_soon = [i for i in items if not i.overdue and i.due_at is not None and i.due_at <= soon]
        counts: dict[str, Counter[tuple[str, str]]] = {
            "overdue": Counter((unit_of(i), i.workflow) for i in overdue),
            "due_soon": Counter((unit_of(i), i.workflow) for i in due_soon),
        }
        rows = sorted(set(counts["overdue"]) | set(counts["due_soon"]))
        return pages.render(
            request,
            "board.html",
            session=session,
            rows=[(u, w, counts["overdue"][(u, w)], counts["due_soon"][(u, w)]) for u, w in rows],
            overdue=overdue[:SHOWN],
            due_soon=due_soon[:SHOWN],
            totals=(len(overdue), len(due_soon)),
            stopped=stopped,
            unit_of=unit_of,
            kinds=[(k, REPORT_ZH.get(k, k)) for k in KINDS],
            year=_year(request, actor.org),
            reports_available=pages.db is not None,
            due_soon_days=pages.options.due_soon_days,
        )

    def _report(request: Request, kind: str, actor: Actor) -> Any:
        if kind not in KINDS or pages.db is None:
            return None
        return report(kind, pages.db, _year(request, actor.org), actor.org, actor=actor)

    @api.get("/board/report/{kind}.xlsx", include_in_schema=False)
    def report_xlsx(kind: str, request: Request) -> Response:
        session = pages.session(request)
        if session is None:
            return pages.to_signin()
        rep = _report(request, kind, session.actor)
        if rep is None:
            return Response(f"no report {kind!r}; one of {', '.join(KINDS)}", 404)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{kind}.xlsx"
            rep.write_xlsx(path)
            body = path.read_bytes()
        return Response(
            body,
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={
                "Content-Disposition": f'attachment; filename="{kind}-{rep.year}.xlsx"',
            },
        )

    @api.get("/board/report/{kind}", include_in_schema=False, response_class=HTMLResponse)
    def report_html(kind: str, request: Request) -> Response:
        session = pages.session(request)
        if session is None:
            return pages.to_signin()
        rep = _report(request, kind, session.actor)
        if rep is None:
            return Response(f"no report {kind!r}; one of {', '.join(KINDS)}", 404)
        return pages.render(request, "_report.html", session=session, report=rep)
