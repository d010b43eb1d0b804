"""Commands on instances: ``start``, ``fire``, ``show``, ``history``, ``available``, ``list``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Column, Table
from rich.text import Text

from xieshang import (
    Actor,
    Engine,
    NotFound,
    Query,
    UnknownTrigger,
)
from xieshang.adapters.common import parse_cursor

from .app import (
    AsActor,
    JsonFlag,
    OverdueFilter,
    PageCursorOption,
    PageSize,
    ReadAs,
    UnitFilter,
    WorkflowFilter,
    _state,
    app,
)
from .hints import check_actor, check_state, check_workflow, did_you_mean
from .output import _actor, _emit_json, _err, _json_object, _moment, _out, _reporting
from .views import (
    _definition,
    _history_table,
    _payload_fields,
    _show_instance,
    _state_label,
    _trigger_label,
)


def _who(engine: Engine, text: str) -> Actor:
    """The actor of ``--as``, its roles checked against the workflows' (a likely swap of
    id:role named)."""
    return check_actor(_actor(text), text, engine.registry)


@app.command()
def start(
    ctx: typer.Context,
    workflow: Annotated[str, typer.Argument(help="The workflow id, e.g. proposal.")],
    actor: AsActor,
    data: Annotated[
        str | None, typer.Option("--data", help="Instance data, a JSON object.")
    ] = None,
    org: Annotated[
        str | None, typer.Option("--org", help="The org (default: the actor's).")
    ] = None,
    command_id: Annotated[
        str | None, typer.Option("--command-id", help="Idempotency key: a retry does nothing.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Start an instance of a workflow."""
    with _reporting(as_json):
        values = _json_object(data, "--data")
        who = _actor(actor)
        engine = _state(ctx).engine()
        if workflow in engine.registry.ids():  # else the engine names the workflow it lacks
            who = _who(engine, actor)
        try:
            instance = engine.start(workflow, values, who, org=org, command_id=command_id)
        except NotFound as e:
            if e.kind == "workflow":
                e.message += did_you_mean(workflow, engine.registry.ids())
            raise
        if as_json:
            _emit_json(instance.to_dict())
            return
        d = _definition(engine, instance)
        _err().print(
            Text(f"✓ started {instance.id} in {_state_label(d, instance.state)}", style="green")
        )
        _show_instance(engine, instance)


@app.command()
def fire(
    ctx: typer.Context,
    instance_id: Annotated[str, typer.Argument(metavar="ID", help="The instance id.")],
    trigger: Annotated[str, typer.Argument(help="The trigger, e.g. submit.")],
    actor: AsActor,
    payload: Annotated[
        str | None, typer.Option("--payload", help="The payload, a JSON object.")
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (some steps need it).")
    ] = None,
    expected_version: Annotated[
        int | None, typer.Option("--expected-version", help="Refuse unless at this version.")
    ] = None,
    command_id: Annotated[
        str | None, typer.Option("--command-id", help="Idempotency key: a retry does nothing.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Fire a trigger on an instance."""
    with _reporting(as_json):
        values = _json_object(payload, "--payload")
        _actor(actor)
        engine = _state(ctx).engine()
        who = _who(engine, actor)
        try:
            instance = engine.fire(
                instance_id,
                trigger,
                who,
                values,
                reason=reason,
                expected_version=expected_version,
                command_id=command_id,
            )
        except UnknownTrigger:
            raise _unknown_trigger(engine, instance_id, trigger) from None
        if as_json:
            _emit_json(instance.to_dict())
            return
        d = _definition(engine, instance)
        _err().print(
            Text(
                f"✓ {_trigger_label(d, trigger)} → {_state_label(d, instance.state)}", style="green"
            )
        )
        _show_instance(engine, instance)


def _unknown_trigger(engine: Engine, instance_id: str, trigger: str) -> UnknownTrigger:
    """The refusal of a trigger the workflow lacks, naming only what can fire from the
    instance's state, and the nearest of those."""
    instance = engine.get(instance_id)
    d = _definition(engine, instance)
    here = sorted({t.trigger for t in d.transitions if instance.state in t.from_}) if d else []
    error = UnknownTrigger(instance.workflow, trigger, here)
    error.message = (
        f"workflow {instance.workflow!r} has no trigger {trigger!r}{did_you_mean(trigger, here)}"
        f" (from {_state_label(d, instance.state)}: {', '.join(here) or 'nothing'})"
    )
    error.args = (error.message,)
    return error


@app.command()
def show(
    ctx: typer.Context,
    instance_id: Annotated[str, typer.Argument(metavar="ID", help="The instance id.")],
    actor: ReadAs = None,
    as_json: JsonFlag = False,
) -> None:
    """Show an instance: its state, version, deadline and data."""
    with _reporting(as_json):
        who = _actor(actor) if actor is not None else None
        engine = _state(ctx).engine(reading=True)
        if who is not None and actor is not None:
            who = _who(engine, actor)
        instance = engine.get(instance_id, who)
        if as_json:
            _emit_json(instance.to_dict())
        else:
            _show_instance(engine, instance)


@app.command()
def history(
    ctx: typer.Context,
    instance_id: Annotated[str, typer.Argument(metavar="ID", help="The instance id.")],
    actor: ReadAs = None,
    as_json: JsonFlag = False,
) -> None:
    """List an instance's history, oldest first (its creation is the first row)."""
    with _reporting(as_json):
        who = _actor(actor) if actor is not None else None
        engine = _state(ctx).engine(reading=True)
        if who is not None and actor is not None:
            who = _who(engine, actor)
        instance = engine.get(instance_id, who)
        rows = engine.history(instance_id, who)
        if as_json:
            _emit_json([row.to_dict() for row in rows])
        else:
            _out().print(_history_table(engine, instance, rows))


@app.command()
def available(
    ctx: typer.Context,
    instance_id: Annotated[str, typer.Argument(metavar="ID", help="The instance id.")],
    actor: AsActor,
    as_json: JsonFlag = False,
) -> None:
    """What an actor may do now: every trigger from the current state, what it takes (its
    payload's fields, * for required ones; its JSON Schema in --json), whether the payload
    decides, the warnings it would record, and why not."""
    with _reporting(as_json):
        _actor(actor)
        engine = _state(ctx).engine(reading=True)
        who = _who(engine, actor)
        choices = engine.available(instance_id, who)
        instance = engine.get(instance_id)
        d = _definition(engine, instance)
        fields = {c.trigger: _payload_fields(d, instance.state, c) for c in choices}
        if as_json:
            _emit_json([c.to_dict() for c in choices])
            return
        table = Table(
            "操作 trigger",
            "到 to",
            "可以 allowed",
            "填写 payload (* required)",
            "原因 why not",
            title=Text(f"{who.id} 在 {_state_label(d, instance.state)}"),
        )
        for c in choices:
            mark, style = ("✓", "green") if c.allowed else ("✗", "red")
            if c.needs_payload:
                mark, style = "须填写 payload", "yellow"
            notes = [c.reason or ""] if c.reason else []
            notes += [f"⚠ {w['code']}: {w['message']}" for w in c.warnings]
            shown = ", ".join(
                f"{f['field']}{'*' if f['required'] else ''}" for f in fields[c.trigger]
            )
            table.add_row(
                Text(_trigger_label(d, c.trigger)),
                Text(_state_label(d, c.target)),
                Text(mark, style=style),
                Text(shown or "-"),
                Text("\n".join(notes)),
            )
        _out().print(table)


@app.command("list")
def list_instances(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option("--state", help="Only in this state.")] = None,
    workflow: WorkflowFilter = None,
    org: Annotated[str | None, typer.Option("--org", help="Only this org.")] = None,
    parent: Annotated[
        str | None, typer.Option("--parent", help="Only the children of this instance.")
    ] = None,
    unit: UnitFilter = None,
    overdue: OverdueFilter = None,
    limit: PageSize = 50,
    cursor: PageCursorOption = None,
    actor: ReadAs = None,
    as_json: JsonFlag = False,
) -> None:
    """List instances, oldest first, one page at a time."""
    with _reporting(as_json):
        after = parse_cursor(cursor, "--cursor")
        who = _actor(actor) if actor is not None else None
        engine = _state(ctx).engine(reading=True)
        if who is not None and actor is not None:
            who = _who(engine, actor)
        if workflow is not None:
            check_workflow(engine.registry, workflow)
        if state is not None:
            check_state(engine.registry, state, workflow)
        page = engine.query(
            Query(
                workflow=workflow,
                state=state,
                org=org,
                parent_id=parent,
                unit=unit,
                overdue=overdue,
                limit=limit,
                after=after,
            ),
            actor=who,
        )
        if as_json:
            _emit_json(
                {"items": [i.to_dict() for i in page.items], "next_cursor": page.next_cursor}
            )
            return
        if not page.items:
            named = (("workflow", workflow), ("state", state), ("org", org), ("parent", parent),
                     ("unit", unit))  # fmt: skip
            asked = [f"{k} {v}" for k, v in named if v is not None]
            if overdue is not None:
                asked.append("overdue" if overdue else "not overdue")
            where = f" ({', '.join(asked)})" if asked else ""
            more = " after this cursor" if cursor else ""
            _out().print(Text(f"没有实例 no instances{where}{more}"))
            return
        # ids are what the next command needs: never cut short
        id_width = max((len(i.id) for i in page.items), default=2)
        table = Table(
            Column("编号 id", min_width=id_width),
            "流程 workflow",
            "状态 state",
            "版本",
            "组织 org",
            "更新 updated",
            "期限 due",
        )
        for i in page.items:
            d = _definition(engine, i)
            table.add_row(
                Text(i.id),
                Text(i.workflow),
                Text(_state_label(d, i.state)),
                str(i.version),
                Text(i.org),
                _moment(i.updated_at),
                _moment(i.due_at) + (" 逾期" if i.overdue else ""),
            )
        out = _out()
        out.print(table)
        if page.next_cursor:
            out.print(Text(f"next page: --cursor '{page.next_cursor}'"))
