"""The types the expression checker reasons with, and the signatures of the functions.

A type is what an expression gives at run time as CEL sees it. Dates, datetimes and durations
of instance data and params are text (``'2024-10-10'``, ``'5 working days'``), told apart here
only so that mistakes between them can be named; ``dyn`` is a value of unknown type (an
``object`` field, an element of an untyped list, another instance's data), which fits anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .definition import FieldSpec, ParamSpec

__all__ = [
    "DYN",
    "SIGNATURES",
    "Signature",
    "T",
    "accepts",
    "from_field",
    "from_param",
    "record",
    "signatures",
]

STRINGS = frozenset({"string", "enum", "date", "datetime", "duration"})
NUMBERS = frozenset({"int", "uint", "double", "number"})


@dataclass(frozen=True, slots=True)
class T:
    """A type: its kind, the element (list) or value (map) type, a record's fields, an enum's
    values, and for a literal its value (in a 1-tuple)."""

    kind: str
    of: T | None = None
    fields: tuple[tuple[str, T], ...] | None = None
    values: tuple[str, ...] | None = None
    literal: tuple[Any] | None = None

    def member(self, name: str) -> T:
        if self.kind == "record" and self.fields is not None:
            return dict(self.fields).get(name, DYN)
        if self.kind == "map" and self.of is not None:
            return self.of
        return DYN

    @property
    def unknown(self) -> bool:
        return self.kind in ("dyn", "null")

    def __str__(self) -> str:
        if self.kind == "list":
            return "a list" if self.of is None or self.of.unknown else f"a list of {self.of}"
        if self.kind == "enum" and self.values:
            return "text, one of " + ", ".join(self.values)
        return _NAMES.get(self.kind, self.kind)


_NAMES = {
    "string": "text",
    "date": "a date (text 'YYYY-MM-DD')",
    "datetime": "a datetime (ISO text)",
    "duration": "a duration (text such as '5 working days')",
    "timestamp": "a timestamp",
    "interval": "a CEL duration",
    "int": "an int",
    "uint": "an unsigned int",
    "double": "a double",
    "number": "a number",
    "bool": "a bool",
    "bytes": "bytes",
    "map": "a map",
    "record": "a record",
    "null": "null",
    "dyn": "a value of unknown type",
}
DYN = T("dyn")


def record(fields: Mapping[str, T]) -> T:
    return T("record", fields=tuple(fields.items()))


def _scalar(kind: str, values: tuple[str, ...] | None) -> T:
    if kind in ("string", "text"):
        return T("string")
    if kind == "enum":
        return T("enum", values=values)
    if kind == "object":
        return DYN
    return T(kind)


def from_field(spec: FieldSpec) -> T:
    """The type of a data or payload field (an object with ``fields``: a record of them)."""
    if spec.fields is not None:
        shape = record({k: from_field(v) for k, v in spec.fields.items()})
        return T("list", of=shape) if spec.type == "list" else shape
    if spec.type == "list":
        return T("list", of=_scalar(spec.items, spec.item_values) if spec.items else DYN)
    return _scalar(spec.type, spec.values)


def from_param(spec: ParamSpec) -> T:
    """The type of a param: a string param with ``values`` is one of them."""
    if spec.type == "list":
        return T("list", of=T("enum", values=spec.values) if spec.values else T("string"))
    if spec.type == "string" and spec.values:
        return T("enum", values=spec.values)
    return T(spec.type)


_TIMESTAMP_PARTS = [
    *("FullYear", "Month", "Date", "DayOfMonth", "DayOfWeek", "DayOfYear"),
    *("Hours", "Minutes", "Seconds", "Milliseconds"),
]

# What each function takes and gives: its overloads, one a string "kind|kind, kind -> result".
# A param's kinds are those of the types (see ``accepts``); adding a function is one line.
SIGNATURES: dict[str, tuple[str, ...]] = {
    # the domain's functions (date_functions.date_functions), and lookup in guards
    "due_date": ("date|timestamp, duration -> date",),
    "workdays_before": ("timestamp|date, duration -> date",),
    "add_workdays": ("date|timestamp, int -> date",),
    "add_months": ("date|timestamp, int -> date",),
    "workdays_between": ("date|timestamp, date|timestamp -> int",),
    "days_between": ("date|timestamp, date|timestamp -> int",),
    "date": ("date|timestamp -> date",),
    "year": ("date|timestamp -> int",),
    "length": ("string|list|map -> int",),
    "lookup": ("string -> instance",),
    # CEL's own
    "size": ("string|bytes|list|map -> int",),
    "int": ("int|double|string|timestamp -> int",),
    "uint": ("int|double|string -> uint",),
    "double": ("int|double|string -> double",),
    "string": ("any -> string",),
    "bool": ("bool|string -> bool",),
    "bytes": ("string|bytes -> bytes",),
    "timestamp": ("timestamp|string -> timestamp",),
    "duration": ("interval|string -> interval",),
    "dyn": ("any -> dyn",),
    "type": ("any -> dyn",),
    "contains": ("string, string -> bool", "list, any -> bool"),
    "startsWith": ("string, string -> bool",),
    "endsWith": ("string, string -> bool",),
    "matches": ("string, string -> bool",),
    "lowerAscii": ("string -> string",),
    "upperAscii": ("string -> string",),
    "trim": ("string -> string",),
    "split": ("string, string -> list", "string, string, int -> list"),
    "join": ("list -> string", "list, string -> string"),
    "replace": ("string, string, string -> string", "string, string, string, int -> string"),
    "indexOf": ("string, string -> int", "string, string, int -> int"),
    **{f"get{part}": ("timestamp -> int", "timestamp, string -> int") for part in _TIMESTAMP_PARTS},
}

INSTANCE_SUMMARY = record(
    {
        "id": T("string"),
        "workflow": T("string"),
        "state": T("string"),
        "final": T("bool"),
        "unit": T("string"),
        "parent_id": T("string"),
        "created_at": T("timestamp"),
        "data": DYN,
    }
)
_RESULTS = {"instance": INSTANCE_SUMMARY, "list": T("list", of=T("string")), "any": DYN}


@dataclass(frozen=True, slots=True)
class Signature:
    """One overload: the kinds each param takes, and the type it gives."""

    params: tuple[frozenset[str], ...]
    result: T
    text: str


def signatures(name: str) -> tuple[Signature, ...] | None:
    """The overloads of function ``name``, or None when it is not in the table."""
    rows = SIGNATURES.get(name)
    if rows is None:
        return None
    out = []
    for row in rows:
        params, result = row.split(" -> ")
        kinds = tuple(frozenset(p.strip().split("|")) for p in params.split(","))
        out.append(Signature(kinds, _RESULTS.get(result, T(result)), row))
    return tuple(out)


# the kinds of value each param kind takes; a date param takes any text, which the function
# reads as an ISO date (a literal is checked to be one), a duration param text it parses
_TAKES = {
    "date": STRINGS - {"duration", "enum"},
    "duration": frozenset({"duration", "string"}),
    "string": STRINGS,
    "int": frozenset({"int", "uint", "number"}),
    "double": frozenset({"double", "number"}),
    "map": frozenset({"map", "record"}),
}


def accepts(param: frozenset[str], arg: T) -> bool:
    """Whether a param of these kinds takes a value of type ``arg`` (an unknown one always)."""
    if arg.unknown or "any" in param:
        return True
    return any(arg.kind in _TAKES.get(kind, frozenset({kind})) for kind in param)
