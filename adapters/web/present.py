"""How the pages show things: labels from the definitions, values, times in China time, the
diagram with the current state marked, and the Jinja2 templates."""

from __future__ import annotations

import re
import threading
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates

from xieshang import Definition, Registry, XieshangError
from xieshang.adapters.common import svg
from xieshang.shared import to_dot

from .forms import VALUE_ZH

__all__ = ["CN", "Labels", "diagram", "templates"]

CN = timezone(timedelta(hours=8))
DOT_TIMEOUT_SECONDS = 20
_HERE = Path(__file__).parent
# the rows the engine writes itself, which no definition labels
_ENGINE_STEPS = {
    "start": "创建",
    "overdue": "逾期",
    "remind": "到期提醒",
    "parent_update": "子事项办理结果回写",
    "linked_update": "关联事项回写",
    "redact": "删除敏感内容",
}
_SVG_CACHE: dict[str, str | None] = {}
_SVG_LOCK = threading.Lock()


def _when(value: Any) -> str:
    if isinstance(value, str) and len(value) == 10:  # a date: no time, no zone to convert
        return value
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=CN)
        return moment.astimezone(CN).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


def _shown(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list):
        return "、".join(_shown(v) for v in value)
    if isinstance(value, dict):
        return "；".join(f"{k}: {_shown(v)}" for k, v in value.items())
    text = str(value)
    return f"{VALUE_ZH[text]}" if text in VALUE_ZH else text


class Labels:
    """The Chinese (and English) labels of one registry's workflows."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def definition(self, workflow: str) -> Definition | None:
        try:
            return self.registry.get(workflow).definition
        except XieshangError:
            return None

    def workflow(self, workflow: str) -> str:
        d = self.definition(workflow)
        return d.title.zh if d is not None else workflow

    def workflow_en(self, workflow: str) -> str:
        d = self.definition(workflow)
        return (d.title.en or "") if d is not None else ""

    def state(self, workflow: str, state: str) -> str:
        d = self.definition(workflow)
        spec = d.states.get(state) if d is not None else None
        return spec.label.zh if spec is not None else state

    def trigger(self, workflow: str, trigger: str) -> str:
        d = self.definition(workflow)
        for t in d.transitions if d is not None else ():
            if t.trigger == trigger and t.label is not None:
                return t.label.zh
        return _ENGINE_STEPS.get(trigger, trigger)

    def field(self, workflow: str, name: str) -> str:
        d = self.definition(workflow)
        spec = d.data.get(name) if d is not None else None
        return spec.label.zh if spec is not None and spec.label is not None else name

    def role(self, workflow: str, role: str) -> str:
        d = self.definition(workflow)
        label = d.roles.get(role) if d is not None else None
        return label.zh if label is not None else role

    def public_fields(self, workflow: str) -> list[str]:
        d = self.definition(workflow)
        return [k for k, s in d.data.items() if s.public] if d is not None else []


_NODE = re.compile(r'(<g id="node\d+" class=")node(">\s*<title>)([^<]*)(</title>)')


def diagram(definition: Definition, definition_hash: str, state: str) -> str | None:
    """The workflow's SVG with ``state``'s node given the class ``current``; None when graphviz
    is not installed or fails (the page then shows no diagram)."""
    with _SVG_LOCK:
        cached = _SVG_CACHE.get(definition_hash, "")
    if cached == "":
        try:
            cached = svg(to_dot(definition), timeout=DOT_TIMEOUT_SECONDS).decode()
            cached = cached[cached.find("<svg") :]
        except XieshangError:
            cached = None
        with _SVG_LOCK:
            _SVG_CACHE[definition_hash] = cached
    if cached is None:
        return None
    return _NODE.sub(
        lambda m: (
            f"{m.group(1)}node{' current' if m.group(3) == state else ''}"
            f"{m.group(2)}{m.group(3)}{m.group(4)}"
        ),
        cached,
    )


def _templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=str(_HERE / "templates"))
    t.env.filters["when"] = _when
    t.env.filters["shown"] = _shown
    t.env.globals["VALUE_ZH"] = VALUE_ZH
    return t


templates = _templates()
