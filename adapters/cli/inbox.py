"""``xieshang inbox --as ACTOR``: what that actor may act on now, a page at a time."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Column, Table
from rich.text import Text

from xieshang import Query
from xieshang.adapters.common import parse_cursor

from .app import (
    AsActor,
    JsonFlag,
    OverdueFilter,
    PageCursorOption,
    PageSize,
    UnitFilter,
    WorkflowFilter,
    _state,
    app,
)
from .hints import check_actor, check_state, check_workflow
from .output import _actor, _emit_json, _moment, _out, _reporting
from .views import _definition, _state_label, _trigger_label


@app.command()
def inbox(
    ctx: typer.Context,
    actor: AsActor,
    workflow: WorkflowFilter = None,
    state: Annotated[
        list[str] | None, typer.Option("--state", help="Only in this state (repeatable).")
    ] = None,
    unit: UnitFilter = None,
    overdue: OverdueFilter = None,
    limit: PageSize = 50,
    cursor: PageCursorOption = None,
    as_json: JsonFlag = False,
) -> None:
    """The instances ACTOR may act on now (of those it may read), oldest first, with the
    triggers it may fire on each."""
    with _reporting(as_json):
        after = parse_cursor(cursor, "--cursor")
        engine = _state(ctx).engine(reading=True)
        who = check_actor(_actor(actor), actor, engine.registry)
        if workflow is not None:
            check_workflow(engine.registry, workflow)
        for name in state or ():
            check_state(engine.registry, name, workflow)
        page = engine.query(
            Query(
                workflow=workflow,
                states=state or None,
                unit=unit,
                overdue=overdue,
                limit=limit,
                after=after,
                actionable_by=who,
            )
        )
        if as_json:
            items = [{**i.to_dict(), "may_fire": list(page.triggers[i.id])} for i in page.items]
            _emit_json({"items": items, "next_cursor": page.next_cursor})
            return
        out = _out()
        if not page.items:
            more = " after this cursor" if cursor else ""
            out.print(Text(f"没有待办 nothing to act on for {who.id}{more}"))
            return
        table = Table(
            Column("编号 id", min_width=max(len(i.id) for i in page.items)),
            "流程 workflow",
            "状态 state",
            "可办 may fire",
            "期限 due",
        )
        for i in page.items:
            d = _definition(engine, i)
            table.add_row(
                Text(i.id),
                Text(i.workflow),
                Text(_state_label(d, i.state)),
                Text(", ".join(_trigger_label(d, t) for t in page.triggers[i.id])),
                _moment(i.due_at) + (" 逾期" if i.overdue else ""),
            )
        out.print(table)
        if page.next_cursor:
            out.print(Text(f"next page: --cursor '{page.next_cursor}'"))
