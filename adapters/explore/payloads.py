"""Payloads and start data made from a workflow's field types, for a walk that tries them.

One typical value per field, and then one variant per other value worth trying, changed one
field at a time: each value of an enum, both booleans, the ends of a number's range, a date a
month later, an empty list, an omitted optional field. That is enough to take each branch of a
guard that compares one field with a constant, without trying every combination.

A string is a unit id (``u1``) when its field names a unit, department or owner, since bound
roles act for the units named in data; else ``x``. One variant puts the acting actor's id in
its place (written ``ACTOR`` and filled in when the command is sent), for guards such as
``data.first_proposer == actor.id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from xieshang.fields import FieldSpec

__all__ = ["ACTOR", "UNIT", "fill_actor", "variants"]

ACTOR = "\x00actor"  # stands for the acting actor's id until the command is sent
UNIT = "u1"
_UNITISH = ("unit", "department", "owner")
_NUMBERS = ("int", "number")
PEOPLE = ("member-1", "member-2")  # the ids of the walk's members (see walk.actors_of)


def _string(name: str, spec: FieldSpec) -> str:
    base = UNIT if any(word in name for word in _UNITISH) else "x"
    return base * max(spec.min_length or 1, 1) if base == "x" else base


def _number(spec: FieldSpec) -> list[Any]:
    low = spec.minimum if spec.minimum is not None else 0
    high = spec.maximum if spec.maximum is not None else 100
    values = [low, high, (low + high) / 2]
    if spec.type == "int":
        values = [int(v) for v in values]
    return list(dict.fromkeys(values))


def values_of(name: str, spec: FieldSpec, today: date) -> list[Any]:
    """The values worth trying for one field, the typical one first."""
    match spec.type:
        case "enum":
            return list(spec.values or ())
        case "bool":
            return [True, False]
        case "int" | "number":
            return _number(spec)
        case "date":
            return [today.isoformat(), (today + timedelta(days=30)).isoformat()]
        case "datetime":
            return [f"{today.isoformat()}T09:00:00+08:00"]
        case "object":
            return [typical(spec.fields or {}, today)]
        case "list":
            return _lists(name, spec, today)
        case _:
            return [_string(name, spec), ACTOR]


def _lists(name: str, spec: FieldSpec, today: date) -> list[Any]:
    if spec.items == "enum" and spec.item_values:
        one = [spec.item_values[0]]
        every = list(spec.item_values)
        out: list[Any] = [one, every] if len(every) > 1 else [one]
    elif spec.items == "object":
        out = [[typical(spec.fields or {}, today)]]
    else:
        element = FieldSpec(type=spec.items or "string")
        first = values_of(name, element, today)[0]
        out = [[first]]
        if isinstance(first, str) and first != UNIT:
            # several (for a guard on how many), and the actors' ids (for one on who is named)
            out.append([f"{first}{k}" for k in range(1, min(spec.max_length or 5, 5) + 1)])
            out.append([ACTOR, *PEOPLE])
    least = spec.min_length or 0
    if least == 0:
        out.append([])
    return [v for v in out if len(v) >= least] or out[:1]


def typical(fields: Mapping[str, FieldSpec], today: date) -> dict[str, Any]:
    """Every field with its typical value (optional ones too)."""
    return {name: values_of(name, spec, today)[0] for name, spec in fields.items()}


def variants(
    fields: Mapping[str, FieldSpec], today: date, *, start: bool = False
) -> list[dict[str, Any]]:
    """The typical payload, then one variant per other value of one field, then every number
    at once at the top of its range and at its middle (for a guard that relates two numbers),
    then the payload with only its required fields (different payloads only).

    With ``start`` (an instance's data), the typical data has its required fields only, and
    the optional fields tried are enums and booleans: the others are what later steps set."""
    if start:
        fields = {
            name: spec
            for name, spec in fields.items()
            if spec.required or (spec.type in ("enum", "bool") and spec.default is None)
        }
    base = typical(fields, today)
    if start:
        base = {name: value for name, value in base.items() if fields[name].required}
    out = [base]
    for name, spec in fields.items():
        values = values_of(name, spec, today)
        for value in values if name not in base else values[1:]:
            out.append({**base, name: value})
    numbers = {name: _number(spec) for name, spec in fields.items() if spec.type in _NUMBERS}
    for k in (1, 2):
        top = {name: values[min(k, len(values) - 1)] for name, values in numbers.items()}
        out.append({**base, **top})
    out.append({name: value for name, value in base.items() if fields[name].required})
    unique: dict[str, dict[str, Any]] = {}
    for payload in out:
        unique.setdefault(repr(sorted(payload.items())), payload)
    return list(unique.values())


def fill_actor(value: Any, actor_id: str) -> Any:
    """``value`` with the actor placeholder replaced by ``actor_id``, at any depth."""
    if value == ACTOR:
        return actor_id
    if isinstance(value, dict):
        return {k: fill_actor(v, actor_id) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_actor(v, actor_id) for v in value]
    return value
