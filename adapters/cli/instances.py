"""Commands on instances: ``start``, ``fire``, ``show``, ``history``, ``available``, ``list``."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.panel import Panel
from rich.table import Column, Table
from rich.text import Text

from xieshang import Definition, Engine, HistoryEntry, Instance, NotFound, Query
from xieshang.adapters.common import parse_cursor
from xieshang.shared import provisional_years

from .app import AsActor, JsonFlag, ReadAs, _state, app
from .output import _actor, _emit_json, _err, _json_object, _moment, _out, _reporting


def _definition(engine: Engine, instance: Instance) -> Definition | None:
    wf = engine.registry.by_hash(instance.definition_hash)
    if wf is not None:
        return wf.definition
    body = engine.store.load_definition(instance.definition_hash)
    if body is not None:
        return Definition.model_validate(json.loads(body))
    try:
        return engine.registry.get(instance.workflow).definition
    except NotFound:
        return None


def _state_label(d: Definition | None, state: str | None) -> str:
    if state is None:
        return "-"
    spec = d.states.get(state) if d is not None else None
    return f"{spec.label.zh} ({state})" if spec is not None else state


def _trigger_label(d: Definition | None, trigger: str) -> str:
    if d is not None:
        for t in d.transitions:
            if t.trigger == trigger and t.label is not None:
                return f"{t.label.zh} ({trigger})"
    return "创建 (start)" if trigger == "start" else trigger


def _show_instance(engine: Engine, instance: Instance) -> None:
    d = _definition(engine, instance)
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    due = _moment(instance.due_at) + (" 已逾期 (overdue)" if instance.overdue else "")
    provisional = provisional_years(instance.due_basis)
    if provisional:
        years = ", ".join(map(str, provisional))
        due += f" 暂定 (provisional: {years} has no official holiday schedule yet)"
    for key, value in (
        ("编号 id", instance.id),
        ("状态 state", _state_label(d, instance.state) + (" · 已结束" if instance.final else "")),
        ("版本 version", str(instance.version)),
        ("组织 org", instance.org or "-"),
        ("创建 created", _moment(instance.created_at)),
        ("更新 updated", _moment(instance.updated_at)),
        ("期限 due", due),
        *((("上级 parent", instance.parent_id),) if instance.parent_id else ()),
        *((("单位 unit", instance.unit),) if instance.unit else ()),
    ):
        facts.add_row(key, Text(value))
    data = Table("字段 field", "值 value", expand=False)
    for name, value in instance.data.items():
        spec = d.data.get(name) if d is not None else None
        label = f"{spec.label.zh} ({name})" if spec is not None and spec.label else name
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        data.add_row(Text(label), Text(shown))
    title = f"{d.title.zh} ({instance.workflow})" if d is not None else instance.workflow
    out = _out()
    out.print(Panel(facts, title=Text(title), title_align="left"))
    if instance.data:
        out.print(data)


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
        instance = engine.start(workflow, values, who, org=org, command_id=command_id)
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
        who = _actor(actor)
        engine = _state(ctx).engine()
        instance = engine.fire(
            instance_id,
            trigger,
            who,
            values,
            reason=reason,
            expected_version=expected_version,
            command_id=command_id,
        )
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
        engine = _state(ctx).engine()
        instance = engine.get(instance_id, who)
        if as_json:
            _emit_json(instance.to_dict())
        else:
            _show_instance(engine, instance)


def _history_table(engine: Engine, instance: Instance, rows: list[HistoryEntry]) -> Table:
    d = _definition(engine, instance)
    table = Table(
        "#",
        "时间 when",
        "操作 trigger",
        "状态 state",
        "操作人 actor",
        "角色 role",
        "理由 reason",
        title=Text(f"{instance.id} 的历史 history"),
    )
    for row in rows:
        move = _state_label(d, row.target)
        if row.source is not None and row.source != row.target:
            move = f"{_state_label(d, row.source)} → {move}"
        table.add_row(
            str(row.seq),
            _moment(row.occurred_at),
            Text(_trigger_label(d, row.trigger)),
            Text(move),
            Text(str(row.actor.get("id"))),
            Text(row.role),
            Text(row.reason or ""),
        )
    return table


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
        engine = _state(ctx).engine()
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
    """What an actor may do now: every trigger from the current state, whether it needs a
    payload (with its JSON Schema in --json), the warnings it would record, and why not."""
    with _reporting(as_json):
        who = _actor(actor)
        engine = _state(ctx).engine()
        choices = engine.available(instance_id, who)
        if as_json:
            _emit_json([c.to_dict() for c in choices])
            return
        instance = engine.get(instance_id, who)
        d = _definition(engine, instance)
        table = Table(
            "操作 trigger",
            "到 to",
            "可以 allowed",
            "原因 why not",
            title=Text(f"{who.id} 在 {_state_label(d, instance.state)}"),
        )
        for c in choices:
            mark, style = ("✓", "green") if c.allowed else ("✗", "red")
            if c.needs_payload:
                mark, style = "须填写 payload", "yellow"
            notes = [c.reason or ""] if c.reason else []
            notes += [f"⚠ {w['code']}: {w['message']}" for w in c.warnings]
            table.add_row(
                Text(_trigger_label(d, c.trigger)),
                Text(_state_label(d, c.target)),
                Text(mark, style=style),
                Text("\n".join(notes)),
            )
        _out().print(table)


@app.command("list")
def list_instances(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option("--state", help="Only in this state.")] = None,
    workflow: Annotated[str | None, typer.Option("--workflow", help="Only this workflow.")] = None,
    org: Annotated[str | None, typer.Option("--org", help="Only this org.")] = None,
    parent: Annotated[
        str | None, typer.Option("--parent", help="Only the children of this instance.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Page size.")] = 50,
    cursor: Annotated[
        str | None, typer.Option("--cursor", help="Where the previous page ended.")
    ] = None,
    actor: ReadAs = None,
    as_json: JsonFlag = False,
) -> None:
    """List instances, oldest first, one page at a time."""
    with _reporting(as_json):
        after = parse_cursor(cursor, "--cursor")
        who = _actor(actor) if actor is not None else None
        engine = _state(ctx).engine()
        page = engine.query(
            Query(
                workflow=workflow, state=state, org=org, parent_id=parent, limit=limit, after=after
            ),
            actor=who,
        )
        if as_json:
            _emit_json(
                {"items": [i.to_dict() for i in page.items], "next_cursor": page.next_cursor}
            )
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
