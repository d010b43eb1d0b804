"""The form of a trigger, generated from its payload's JSON Schema, and the payload a submitted
form gives back.

Each property becomes one input: an enum a select, a date a date input, a boolean a yes/no
select, a number a number input, a list of text a comma-separated line (a list of an enum a
multiple select), anything else JSON in a text area. Labels come from the transition's payload
fields, else the workflow's data fields of the same name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from xieshang import Definition, InvalidPayload
from xieshang.adapters.reports.labels import (
    CATEGORY_ZH,
    CHANNEL_ZH,
    CLASS_ZH,
    FORM_ZH,
    GROUND_ZH,
    KIND_ZH,
    SATISFACTION_ZH,
    UNIT_ZH,
)

__all__ = ["VALUE_ZH", "FormField", "TriggerForm", "payload_from_form", "trigger_form"]

VALUE_ZH: dict[str, str] = {
    **CATEGORY_ZH,
    **CLASS_ZH,
    **GROUND_ZH,
    **KIND_ZH,
    **CHANNEL_ZH,
    **FORM_ZH,
    **UNIT_ZH,
    **SATISFACTION_ZH,
    "sole": "单独办理",
    "split": "分办",
    "lead_assisting": "主办协办",
    "implemented": "已落实",
    "partly_implemented": "部分落实",
    "not_implemented": "未落实",
}
_SEPARATORS = re.compile(r"[,，、\s]+")


@dataclass(frozen=True)
class FormField:
    """One input: ``kind`` is select, multiselect, bool, date, datetime, number, text,
    textarea, list or json."""

    name: str
    label: str
    kind: str
    required: bool
    options: tuple[tuple[str, str], ...] = ()
    hint: str = ""


@dataclass(frozen=True)
class TriggerForm:
    """A trigger's form: its label, fields, and whether a reason is required."""

    trigger: str
    label: str
    target: str
    fields: list[FormField] = field(default_factory=list)
    reason_required: bool = False


def _label(definition: Definition, trigger: str, state: str, name: str) -> str:
    for t in definition.transitions:
        if t.trigger == trigger and state in t.from_:
            spec = t.payload.get(name)
            if spec is not None and spec.label is not None:
                return spec.label.zh
    data = definition.data.get(name)
    return data.label.zh if data is not None and data.label is not None else name


def _option(value: str) -> tuple[str, str]:
    zh = VALUE_ZH.get(value)
    return (value, f"{zh}（{value}）" if zh else value)


def _field(name: str, label: str, prop: dict[str, Any], required: bool) -> FormField:
    options: tuple[tuple[str, str], ...] = ()
    kind, hint = "json", "JSON"
    ptype = prop.get("type")
    if "enum" in prop:
        kind, options, hint = "select", tuple(_option(str(v)) for v in prop["enum"]), ""
    elif ptype == "boolean":
        kind, options, hint = "bool", (("true", "是"), ("false", "否")), ""
    elif ptype in ("integer", "number"):
        kind, hint = "number", ""
    elif ptype == "string" and prop.get("format") == "date":
        kind, hint = "date", ""
    elif ptype == "string" and prop.get("format") == "date-time":
        kind, hint = "datetime", ""
    elif ptype == "string":
        long = prop.get("maxLength") is None or prop["maxLength"] > 200
        kind, hint = ("textarea" if long else "text"), ""
    elif ptype == "array":
        items = prop.get("items") or {}
        if "enum" in items:
            kind, options, hint = "multiselect", tuple(_option(str(v)) for v in items["enum"]), ""
        elif items.get("type") in ("string", "integer", "number"):
            kind, hint = "list", "多项以逗号分隔 / comma-separated"
    return FormField(name, label, kind, required, options, hint)


def trigger_form(
    definition: Definition, trigger: str, state: str, target: str, schema: dict[str, Any] | None
) -> TriggerForm:
    """The form of ``trigger`` from ``state`` (its payload schema as ``available()`` gave it)."""
    spec = next(
        (t for t in definition.transitions if t.trigger == trigger and state in t.from_), None
    )
    label = spec.label.zh if spec is not None and spec.label is not None else trigger
    props: dict[str, Any] = (schema or {}).get("properties") or {}
    required = set((schema or {}).get("required") or [])
    fields = [
        _field(name, _label(definition, trigger, state, name), prop, name in required)
        for name, prop in props.items()
    ]
    return TriggerForm(
        trigger, label, target, fields, bool(spec is not None and spec.reason_required)
    )


def _value(f: FormField, texts: list[str]) -> Any:
    text = texts[0].strip() if texts else ""
    if f.kind == "multiselect":
        return [t for t in texts if t]
    if f.kind == "bool":
        return text == "true"
    if f.kind == "number":
        return float(text) if "." in text else int(text)
    if f.kind == "datetime":
        return text if len(text) > 16 else text + ":00+08:00"
    if f.kind == "list":
        return [p for p in _SEPARATORS.split(text) if p]
    if f.kind == "json":
        return json.loads(text)
    return text


def payload_from_form(
    form: TriggerForm, values: dict[str, list[str]], *, strict: bool = True
) -> dict[str, Any]:
    """The payload of a submitted ``form`` (blank optional inputs left out). Not ``strict``
    (the trigger cannot fire now anyway, and the engine will say why), a blank required input
    or one that does not convert is left out instead of refused.

    Raises:
        InvalidPayload: an input that is not a number or JSON where one is needed, or a
            required input left blank; each named with what it expects.
    """
    payload: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    for f in form.fields:
        texts = values.get(f.name, [])
        if not any(t.strip() for t in texts):
            if f.required and strict:
                errors.append({"field": f.name, "error": f"必填 / required ({f.label})"})
            continue
        try:
            payload[f.name] = _value(f, texts)
        except ValueError:
            if not strict:
                continue
            expected = "a number" if f.kind == "number" else "JSON"
            errors.append(
                {"field": f.name, "error": f"expected {expected}", "got": repr(texts[0][:80])}
            )
    if errors:
        raise InvalidPayload(f"command {form.trigger!r}", errors)
    return payload
