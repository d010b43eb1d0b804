"""How a definition that does not fit the format's shape reads: each validation error as a
problem at its path in the file (``XS010``), in YAML terms, never in pydantic's own.

A message says what was expected, with an example written as YAML, and what the file holds
(``expected a mapping such as {type: duration, default: "5 working days"}, got the text "5
working days"``); an unknown key names the key it is closest to, or the keys allowed there.
"""

from __future__ import annotations

import difflib
import json
import re
import types
from collections.abc import Iterable
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from .errors import DefinitionError, Problem
from .yamlsafe import Path, format_path

__all__ = [
    "SCHEMA_CODE",
    "ShapeError",
    "allowed_keys",
    "closest",
    "describe",
    "schema_errors",
    "shape_error",
    "suggest",
]

SCHEMA_CODE = "XS010"

# what each part of the format looks like, as an author writes it
_MAPPINGS = {
    "ParamSpec": '{type: duration, default: "5 working days"}',
    "FieldSpec": "{type: string, required: true}",
    "StateSpec": "{label: {zh: 办理中}}",
    "TransitionSpec": "{trigger: accept, from: submitted, to: handling, roles: [clerk]}",
    "TimerSpec": '{in: handling, after: "3 months", fire: mark_overdue}',
    "Label": "{zh: 办理中, en: Handling} (or just the Chinese text)",
    "DeadlineSpec": '{after: "3 months"}',
    "SpawnSpec": "{workflow: unit_reply, for_each: payload.units}",
    "JoinSpec": "{when: all_final}",
    "UpdateSpec": "{instance: data.proposal_id, workflow: proposal, set: {outcome: data.outcome}}",
    "FireOnSpec": "{instance: payload.main_id, workflow: proposal, trigger: merge_into}",
    "WarnSpec": "{code: late, when: now > data.due, message: {zh: 已逾期}}",
    "ChildFireSpec": "{workflow: topic, trigger: cancel}",
    "ReadRule": "{roles: [clerk]}",
    "ReadSpec": "{see: [{anyone: true}]}",
    "StartSpec": "{roles: [proposer]}",
    "payload": "{reply_class: {type: enum, values: [A, B, C]}}",
    "set": "{reply_class: payload.reply_class}",
    "children_set": "{reply_due: data.reply_due}",
    "roles": "{clerk: {zh: 办事员}}",
    "states": "{submitted: {initial: true, label: {zh: 已提交}}}",
    "data": "{title: {type: string, required: true}}",
    "params": '{reply_window: {type: duration, default: "3 months"}}',
    "bound_roles": "{handling_unit: [data.units]}",
}
_LISTS = {
    "roles": "[clerk, reviewer]",
    "from": "[submitted, handling] (or one state)",
    "not_by": "[submit]",
    "emits": "[proposal.assigned]",
    "values": "[A, B, C]",
    "item_values": "[A, B, C]",
    "states": "[handling]",
    "not_states": "[closed]",
    "units": "[handling_unit]",
    "named": "[data.first_proposer]",
    "ignore": "[reassigned]",
    "bound_roles": "[handling_unit]",
    "transitions": "[{trigger: accept, from: submitted, to: handling, roles: [clerk]}]",
    "timers": '[{in: handling, after: "3 months", fire: mark_overdue}]',
    "warn": "[{code: late, when: now > data.due, message: {zh: 已逾期}}]",
    "children_fire": "[{workflow: topic, trigger: cancel}]",
    "see": "[{roles: [clerk]}]",
    "data": "[{roles: [clerk]}]",
    "internal": "[{roles: [clerk]}]",
}
_SIMPLE = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text",
    "string_pattern_mismatch": "a lower_snake_case name (a-z, 0-9 and _, starting with a letter)",
}


def suggest(word: str, options: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for the option closest to a misspelt word, or nothing."""
    close = closest(word, options)
    return f"; did you mean {close!r}?" if close is not None else ""


def closest(word: str, options: Iterable[str]) -> str | None:
    """The option a misspelt word most likely means, or None.

    That is, for a word of four letters or more, the one option it starts (``reason_required``
    for ``reason``); else difflib's closest at a ratio of at least 0.6; else the first option
    one edit away (``to`` for ``tp``).
    """
    choices = sorted(set(options))
    starts = [c for c in choices if c.startswith(word)] if len(word) >= 4 else []
    if len(starts) == 1:
        return starts[0]
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return close[0]
    return next((c for c in choices if _one_edit(word, c)), None)


def _one_edit(a: str, b: str) -> bool:
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def describe(value: Any) -> str:
    """A value as the file holds it, in YAML terms: ``the text "5 working days"``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, int | float):
        return f"the number {value}"
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > 60:
        text = text[:57] + "..."
    if isinstance(value, str):
        return f"the text {text}"
    if isinstance(value, list):
        return f"the list {text}"
    return f"the mapping {text}"


def _path_in_file(loc: tuple[Any, ...]) -> Path:
    out: list[str | int] = []
    for part in loc:
        if part == "from_":
            part = "from"
        elif part == "in_":
            part = "in"
        if isinstance(part, str) and ("[" in part or part in {"function-after", "function-before"}):
            continue  # pydantic's names for union members and validators are not places in the file
        out.append(part)
    return tuple(out)


def _model_at(path: Path) -> Any:
    """The part of the format at ``path`` (a model class or a type), or None if unknown."""
    from .definition import Definition  # the format's models import this module

    ann: Any = Definition
    for part in path:
        ann = _member(ann, part)
        if isinstance(ann, type) and issubclass(ann, BaseModel) and isinstance(part, str):
            field = next((f for n, f in ann.model_fields.items() if part in (n, f.alias)), None)
            ann = field.annotation if field is not None else None
        elif get_origin(ann) is dict and isinstance(part, str):
            ann = get_args(ann)[1]
        elif get_origin(ann) is tuple and isinstance(part, int):
            ann = get_args(ann)[0]
        else:
            return None
    return _member(ann, None)


def _member(ann: Any, part: str | int | None) -> Any:
    """Of a possibly optional or union annotation, the member that can hold ``part``."""
    if get_origin(ann) not in (Union, types.UnionType):
        return ann
    members = [a for a in get_args(ann) if a is not type(None)]
    for m in members:
        origin = get_origin(m) or m
        if part is None or isinstance(part, str):
            if isinstance(origin, type) and issubclass(origin, dict | BaseModel):
                return m
        elif origin is tuple:
            return m
    return members[0] if part is None and len(members) == 1 else None


def allowed_keys(owner: Path) -> list[str]:
    """The keys the format allows in the mapping at ``owner`` (empty when any key is)."""
    model = _model_at(owner)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    keys = [f.alias or n for n, f in model.model_fields.items()]
    if not owner:  # the factoring the loader expands before the model sees the file
        keys += ["types", "role_groups", "let"]
    elif len(owner) == 2 and owner[0] == "transitions":
        keys.append("branches")
    return keys


def _expected(err: Any, path: Path) -> str | None:
    """What the place expects, as a phrase (``a list such as [clerk]``), for a type error."""
    kind = err["type"]
    key = path[-1] if path else ""
    if kind in _SIMPLE:
        return _SIMPLE[kind]
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        name = (err.get("ctx") or {}).get("class_name") or key
        example = _MAPPINGS.get(str(name))
        if kind == "dict_type" and key == "data" and len(path) > 1:
            example = None  # a spawn's data is a mapping of CEL, not of fields
        return f"a mapping such as {example}" if example else "a mapping (key: value)"
    if kind in ("tuple_type", "list_type"):
        example = _LISTS.get(str(key))
        return f"a list such as {example}" if example else "a list"
    return None


def _schema_message(err: Any, path: Path, others: list[Any]) -> str:
    kind = err["type"]
    got = describe(err.get("input"))
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        allowed = allowed_keys(path[:-1])
        hint = suggest(str(path[-1]), allowed) if path else ""
        if not hint and allowed:
            hint = "; allowed here: " + ", ".join(allowed)
        return "unknown key" + hint
    expected = [e for e in (_expected(x, path) for x in [err, *others]) if e]
    if expected:
        return f"expected {' or '.join(dict.fromkeys(expected))}, got {got}"
    if kind == "literal_error":
        values = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        hint = suggest(str(err.get("input")), values) if isinstance(err.get("input"), str) else ""
        return f"expected one of {', '.join(values)}, got {got}{hint}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        word = {"greater_than_equal": "at least", "greater_than": "more than"}.get(kind, "at most")
        bound = next(iter(ctx.values()), "")
        return f"must be {word} {bound}, got {got}"
    if kind == "too_short":
        least = ctx.get("min_length", 1)
        return f"needs at least {least} item{'s' * (least != 1)}, got {got}"
    if kind == "string_too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else f"too short, got {got}"
    if kind in ("too_long", "string_too_long"):
        return f"at most {ctx.get('max_length')} long, got {got}"
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        return msg.removeprefix("Value error, ")
    return msg.replace("Input should be", "expected") + f", got {got}"


class ShapeError(tuple[Path, str, str]):
    """One shape error: its path in the file, its message, and pydantic's kind of error."""

    __slots__ = ()

    @property
    def path(self) -> Path:
        return self[0]

    @property
    def message(self) -> str:
        return self[1]

    @property
    def kind(self) -> str:
        return self[2]


def schema_errors(error: ValidationError) -> list[ShapeError]:
    """Each place of a definition's validation errors, once, with a message in YAML terms."""
    by_path: dict[Path, list[Any]] = {}
    for err in error.errors(include_url=False):
        by_path.setdefault(_path_in_file(err["loc"]), []).append(err)
    # a misspelt key and the required key it stands for are one mistake: report the misspelling
    misspelt = {
        (*path[:-1], m.group(1))
        for path, errs in by_path.items()
        for m in [re.search(r"did you mean '([^']+)'", _schema_message(errs[0], path, []))]
        if errs[0]["type"] == "extra_forbidden" and m
    }
    out = []
    for path, errs in by_path.items():
        if errs[0]["type"] == "missing" and path in misspelt:
            continue
        out.append(ShapeError((path, _schema_message(errs[0], path, errs[1:]), errs[0]["type"])))
    return out


def shape_error(error: ValidationError) -> DefinitionError:
    return DefinitionError(
        [
            Problem(SCHEMA_CODE, "schema", e.message, format_path(e.path), extra={"at": e.path})
            for e in schema_errors(error)
        ]
    )
