"""The loader's type checks of expressions: each compiled expression against the declared types.

The checker calls :func:`check_types` for every expression that compiled. The names it reads
have the types the definition declares: ``data.*`` its fields, ``payload.*`` the trigger's
payload fields, ``params.*`` its params, ``instance.*``, ``actor.*``, ``now`` (a timestamp),
``children`` and ``siblings`` (summaries whose data is of unknown type), ``item`` (an element
of the spawn list), ``lookup()`` (a summary), and the functions of
:data:`~xieshang.typecheck_types.SIGNATURES`. What it cannot know (an ``object`` field, an
untyped list's elements, another instance's data) it never reports.

===== ===================== ==============================================================
XS127 wrong-type            a value that cannot fit where it goes: a ``set`` (or ``update``,
                            spawn ``data``) of a field, a guard or condition that is not a
                            bool, a ``for_each`` that is not a list, a deadline that is no date
XS128 type-mismatch         a comparison or arithmetic between types that cannot meet (a
                            timestamp with a date, an int with text, a date plus a number), or
                            an enum compared with a value it never takes
XS129 bad-literal           a date or duration literal that does not parse
XS130 bad-call              a function called with the wrong number or types of arguments
XS131 spawn-missing-field   spawn ``data`` leaves out a field the child requires
XS132 spawn-unknown-field   spawn ``data`` names a field the child does not declare
===== ===================== ==============================================================
"""

from __future__ import annotations

import ast
import difflib
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pydantic import ValidationError

from .definition import FieldSpec, TransitionSpec
from .schema_types import value_adapter
from .typecheck_infer import Infer, date_problem
from .typecheck_parse import Parsed, parse
from .typecheck_types import DYN, NUMBERS, STRINGS, T, accepts, from_field, from_param, record
from .yamlsafe import Path

if TYPE_CHECKING:
    from .checker import Checker

__all__ = ["check_types"]

_SUMMARY = record(
    {
        "id": T("string"),
        "workflow": T("string"),
        "state": T("string"),
        "unit": T("string"),
        "final": T("bool"),
        "data": DYN,
    }
)
_ACTOR = record(
    {"id": T("string"), "roles": T("list", of=T("string")), "org": T("string"), "unit": T("string")}
)
# what each field type takes besides a value of its own kind (a timestamp is stored as ISO text)
_FITS = {
    "string": STRINGS | {"timestamp"},
    "text": STRINGS | {"timestamp"},
    "enum": frozenset({"string", "enum"}),
    "int": frozenset({"int", "uint", "number"}),
    "number": NUMBERS,
    "date": frozenset({"date", "string"}),
    "datetime": frozenset({"datetime", "timestamp", "string"}),
    "object": frozenset({"map", "record"}),
}


def check_types(checker: Checker, source: str, path: Path) -> None:
    """Add a problem (XS127-XS132) for each type mistake of the expression at ``path``."""
    t = _transition(checker, path)
    spawn_list = t is not None and path[2:] == ("spawn", "for_each")
    if spawn_list:
        assert t is not None
        _spawn_fields(checker, path, t)
    parsed = parse(source)
    if parsed is None:
        return
    env = _env(checker, path, t)
    infer = Infer(parsed, env)
    result = infer.type_of(parsed.tree)
    for found in infer.findings:
        checker.add(found.code, found.name, found.message, path)
    if infer.findings:
        return
    what = path[-1]
    if what in ("guard", "when") and not result.unknown and result.kind != "bool":
        hint = f"compare it, e.g. `{source} != null`" if result.kind != "list" else "use exists()"
        _wrong(checker, path, parsed, result, f"the {what} must give a bool; {hint}")
    elif path[-2:] == ("deadline", "at") and not accepts(frozenset({"date", "timestamp"}), result):
        _wrong(checker, path, parsed, result, "a deadline's at must give a date")
    elif spawn_list and not result.unknown and result.kind != "list":
        _wrong(checker, path, parsed, result, f"for_each must give a list; write `[{source}]`")
    else:
        field = _target(checker, path, t)
        if field is not None:
            for leaf in _leaves(parsed.tree):
                if _fit(checker, path, parsed, leaf, Infer(parsed, env).type_of(leaf), field):
                    break


def _transition(checker: Checker, path: Path) -> TransitionSpec | None:
    if path[0] == "transitions" and isinstance(path[1], int) and len(path) > 2:
        return checker.d.transitions[path[1]]
    return None


def _known_data(checker: Checker, workflow: str) -> Mapping[str, FieldSpec] | None:
    if workflow == checker.d.id:
        return checker.d.data
    return checker.known_data.get(workflow)


# what every expression of a definition may read, built once per definition being checked
_BASES: weakref.WeakKeyDictionary[Checker, dict[str, T]] = weakref.WeakKeyDictionary()
_PAYLOADS: weakref.WeakKeyDictionary[Checker, dict[int, T]] = weakref.WeakKeyDictionary()


def _env(checker: Checker, path: Path, t: TransitionSpec | None) -> dict[str, T]:
    base = _BASES.get(checker)
    if base is None:
        base = _BASES[checker] = _base_env(checker)
    payloads = _PAYLOADS.setdefault(checker, {})
    key = path[1] if t is not None and isinstance(path[1], int) else -1
    payload = payloads.get(key)
    if payload is None:
        fields = t.payload if t else {}
        payload = payloads[key] = record({k: from_field(v) for k, v in fields.items()})
    env = {**base, "payload": payload}
    if t is not None and t.spawn is not None and path[2] == "spawn" and path[3] != "for_each":
        listed = parse(t.spawn.for_each)
        over = DYN if listed is None else Infer(listed, env).type_of(listed.tree)
        env["item"] = (over.of or DYN) if over.kind == "list" else DYN
    return env


def _base_env(checker: Checker) -> dict[str, T]:
    d = checker.d
    instance = record(
        {
            "id": T("string"),
            "workflow": T("string"),
            "state": T("enum", values=tuple(d.states)),
            "version": T("int"),
            "org": T("string"),
            "created_at": T("timestamp"),
            "entered_at": T("timestamp"),
            "parent_id": T("string"),
            "unit": T("string"),
        }
    )
    return {
        "data": record({k: from_field(v) for k, v in d.data.items()}),
        "actor": _ACTOR,
        "instance": instance,
        "params": record({k: from_param(v) for k, v in d.params.items()}),
        "now": T("timestamp"),
        "children": T("list", of=_SUMMARY),
        "siblings": T("list", of=_SUMMARY),
        "child": _SUMMARY,
        "index": T("int"),
    }


def _target(checker: Checker, path: Path, t: TransitionSpec | None) -> FieldSpec | None:
    """The field that the value of the expression at ``path`` is stored in, when known."""
    if t is None:
        return None
    rest = path[2:]
    if len(rest) == 2 and rest[0] == "set":
        return checker.d.data.get(str(rest[1]))
    if rest[:2] == ("update", "set") and t.update is not None:
        return (_known_data(checker, t.update.workflow) or {}).get(str(rest[2]))
    if rest[:2] == ("spawn", "data") and t.spawn is not None:
        return (_known_data(checker, t.spawn.workflow) or {}).get(str(rest[2]))
    return None


def _leaves(node: ast.expr) -> list[ast.expr]:
    """The values a ``c ? a : b`` may give (respelt ``c if a else b``), or the node itself."""
    if isinstance(node, ast.IfExp):
        return [*_leaves(node.test), *_leaves(node.orelse)]
    return [node]


def _wrong(checker: Checker, path: Path, parsed: Parsed, result: T, why: str) -> None:
    text = parsed.text(parsed.tree)
    checker.add("XS127", "wrong-type", f"`{text}` gives {result}; {why}", path)


def _fit(
    checker: Checker, path: Path, parsed: Parsed, leaf: ast.expr, value: T, spec: FieldSpec
) -> bool:
    """Whether a problem was added: ``value`` (the type of ``leaf``) cannot be stored in a
    field of ``spec``."""
    field, text, name = from_field(spec), parsed.text(leaf), path[-1]
    if value.unknown:
        return False
    if value.literal is not None:
        literal = value.literal[0]
        try:
            value_adapter(spec).validate_python(literal)
            return False
        except ValidationError as e:
            reason = e.errors(include_url=False)[0]["msg"]
        if spec.type == "date" and isinstance(literal, str):
            checker.add(
                "XS129",
                "bad-literal",
                f"`{text}` {date_problem(literal) or 'is not a date'}; field {name!r} is a date: "
                f"write `{name}: '2024-10-10'`",
                path,
            )
            return True
        checker.add(
            "XS127",
            "wrong-type",
            f"`{text}` does not fit field {name!r}, which is {field}: {reason}",
            path,
        )
        return True
    if spec.type == "list" and value.kind == "list":
        of = value.of
        if spec.items is None or of is None or of.unknown or _fits(of.kind, spec.items):
            return False
    elif _fits(value.kind, spec.type):
        return False
    checker.add(
        "XS127",
        "wrong-type",
        f"`{text}` gives {value}, but field {name!r} is {field}; {_hint(value, spec, text, name)}",
        path,
    )
    return True


def _fits(kind: str, field_type: str) -> bool:
    return kind == field_type or kind in _FITS.get(field_type, ())


def _hint(value: T, spec: FieldSpec, text: str, name: object) -> str:
    if spec.type == "date" and value.kind in ("timestamp", "datetime"):
        return f"write `{name}: date({text})`"
    if spec.type in ("string", "text") and value.kind in NUMBERS | {"bool"}:
        return f"write `{name}: string({text})`"
    if spec.type in ("int", "number") and value.kind in ("string", "double"):
        return f"write `{name}: int({text})`"
    if spec.type == "list" and value.kind != "list":
        return f"write `{name}: [{text}]`"
    return f"give {from_field(spec)}, or declare the field with the type it holds"


def _spawn_fields(checker: Checker, path: Path, t: TransitionSpec) -> None:
    """Spawn data against the child's fields: each one declared, every required one given."""
    assert t.spawn is not None
    fields = _known_data(checker, t.spawn.workflow)
    if fields is None:
        return
    where: Path = (*path[:3], "data")
    given = t.spawn.data
    for name in given:
        if name not in fields:
            checker.add(
                "XS132",
                "spawn-unknown-field",
                f"spawn data names field {name!r}, which workflow {t.spawn.workflow!r} does "
                f"not declare{_suggest(name, fields)}; its fields: {', '.join(fields)}",
                (*where, name),
            )
    missing = [
        name
        for name, spec in fields.items()
        if spec.required and spec.default is None and name not in given
    ]
    if missing:
        checker.add(
            "XS131",
            "spawn-missing-field",
            f"spawn data leaves out {', '.join(map(repr, missing))}, required by workflow "
            f"{t.spawn.workflow!r}; add `{missing[0]}: <expression>` under spawn.data",
            where if given else path[:3],
        )


def _suggest(name: str, fields: Mapping[str, FieldSpec]) -> str:
    close = difflib.get_close_matches(name, list(fields), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
