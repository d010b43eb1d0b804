"""How instances are shown to people: labels in Chinese first, a panel of facts, history tables,
the fields a trigger's payload takes."""

from __future__ import annotations

import json

from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from xieshang import Availability, Definition, Engine, HistoryEntry, Instance, NotFound
from xieshang.shared import provisional_years

from .output import _moment, _out

__all__ = [
    "_definition",
    "_history_table",
    "_payload_fields",
    "_show_instance",
    "_state_label",
    "_trigger_label",
]


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
        ("版本 version", f"{instance.version} (definition v{instance.workflow_version})"),
        ("组织 org", instance.org or "-"),
        ("创建 created", _moment(instance.created_at)),
        ("更新 updated", _moment(instance.updated_at)),
        ("期限 due", due),
        *((("上级 parent", instance.parent_id),) if instance.parent_id else ()),
        *((("单位 unit", instance.unit),) if instance.unit else ()),
        *(
            (("暂停 suspended", f"since {_moment(instance.suspended_at)} (resume to go on)"),)
            if instance.suspended_at
            else ()
        ),
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
    out.print(Panel(facts, title=Text(title), title_align="left", expand=False))
    if instance.data:
        out.print(data)


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


def _payload_fields(d: Definition | None, state: str, c: Availability) -> list[dict[str, object]]:
    """The payload fields of the transition ``c`` stands for: name, type, whether required."""
    if d is None:
        return []
    for t in d.transitions:
        if t.trigger == c.trigger and state in t.from_ and t.to == c.target:
            return [
                {"field": name, "type": spec.type, "required": spec.required}
                for name, spec in t.payload.items()
            ]
    return []
