"""Field specs to pydantic validators: payloads and instance data are checked by pydantic."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, Literal, NotRequired, Required

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
)
from typing_extensions import TypedDict

from .definition import FieldSpec

__all__ = [
    "NOT_PLAIN",
    "Validator",
    "annotation_for",
    "field_errors",
    "plain_check",
    "record_adapter",
    "value_adapter",
]


def _iso_date(value: str) -> str:
    date.fromisoformat(value)
    return value


def _text_or_datetime(value: Any) -> Any:
    # pydantic would also read a number as Unix seconds (or milliseconds, past 2e10): a
    # datetime field takes ISO text with its zone, as its JSON Schema says, or a datetime
    if not isinstance(value, str | datetime):
        raise ValueError(f"expected an ISO datetime with a timezone, got a {type(value).__name__}")
    return value


def _integral(value: Any) -> Any:
    # JSON does not tell 3 from 3.0, and JSON Schema calls both an integer: take 3.0 as 3
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _finite(value: Any) -> Any:
    # a number an effect computes can overflow; the door refuses such input before
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("not a finite number (NaN and infinities have no JSON form)")
    return value


_Int = Annotated[StrictInt, BeforeValidator(_integral)]
_Date = Annotated[StrictStr, Field(pattern=r"^\d{4}-\d{2}-\d{2}$"), AfterValidator(_iso_date)]
_SCALARS: dict[str, Any] = {
    "string": StrictStr,
    "text": StrictStr,
    "int": _Int,
    "number": Annotated[StrictInt | StrictFloat, AfterValidator(_finite)],
    "bool": StrictBool,
    "date": _Date,
    "datetime": Annotated[AwareDatetime, BeforeValidator(_text_or_datetime)],
    "object": dict[str, Any],
}


def _scalar(kind: str, values: tuple[str, ...] | None) -> Any:
    if kind == "enum":
        return Literal.__getitem__(values)  # built from the definition at runtime
    if kind == "list":
        return list[Any]
    return _SCALARS[kind]


def annotation_for(spec: FieldSpec, name: str = "item") -> Any:
    """The pydantic annotation that validates one field (``name`` names an object's record)."""
    shape = _record(name, spec.fields) if spec.fields is not None else None
    if spec.type == "list":
        item: Any = shape or (_scalar(spec.items, spec.item_values) if spec.items else Any)
        base: Any = list.__class_getitem__(item)
    else:
        base = shape or _scalar(spec.type, spec.values)
    constraints: dict[str, Any] = {}
    if spec.max_length is not None:
        constraints["max_length"] = spec.max_length
    if spec.min_length is not None:
        constraints["min_length"] = spec.min_length
    if spec.minimum is not None:
        constraints["ge"] = spec.minimum
    if spec.maximum is not None:
        constraints["le"] = spec.maximum
    return Annotated[base, Field(**constraints)] if constraints else base


NOT_PLAIN: Any = object()  # what a plain check returns for a value it leaves to pydantic
Plain = Callable[[Any], Any]  # a value as pydantic would give it back, or NOT_PLAIN


class Validator:
    """A pydantic validator built on first use: a workflow has hundreds (a record per payload,
    one per data field) and a command uses a few. ``validate_python`` and ``dump_python`` are
    the adapter's own; :meth:`checked` is the two in one, with a plain check first when the
    spec has one (:func:`plain_check`)."""

    __slots__ = ("_adapter", "_build", "_plain")

    def __init__(self, build: Callable[[], TypeAdapter[Any]], plain: Plain | None = None) -> None:
        self._build = build
        self._adapter: TypeAdapter[Any] | None = None
        self._plain = plain

    @property
    def adapter(self) -> TypeAdapter[Any]:
        if self._adapter is None:
            self._adapter = self._build()
        return self._adapter

    def validate_python(self, value: Any) -> Any:
        return self.adapter.validate_python(value)

    def dump_python(self, value: Any, *, mode: Literal["json", "python"] = "python") -> Any:
        return self.adapter.dump_python(value, mode=mode)

    def checked(self, value: Any) -> Any:
        """``value`` validated and dumped as JSON: what ``dump_python(validate_python(value),
        mode="json")`` gives, raising what it raises. A value of a plain spec that is already
        in its JSON form (the common case: a string for a string field) skips pydantic."""
        if self._plain is not None:
            found = self._plain(value)
            if found is not NOT_PLAIN:
                return found
        return self.adapter.dump_python(self.adapter.validate_python(value), mode="json")


def _plain_scalar(kind: str, values: tuple[str, ...] | None) -> Callable[[Any], bool] | None:
    """Whether a value of ``kind`` is valid as it is and dumps to itself: a test of its exact
    type, or None for kinds pydantic converts (dates, numbers, objects)."""
    if kind in ("string", "text"):
        return lambda v: type(v) is str
    if kind == "bool":
        return lambda v: type(v) is bool
    if kind == "int":
        return lambda v: type(v) is int
    if kind == "enum" and values is not None:
        allowed = frozenset(values)
        return lambda v: type(v) is str and v in allowed
    return None


def plain_check(spec: FieldSpec) -> Plain | None:
    """The check of a field whose valid JSON values pydantic gives back unchanged (strings,
    enums, bools, ints and lists of them, with their lengths and bounds): the value itself (a
    list: a copy), or NOT_PLAIN for anything else, which pydantic then judges. None for a spec
    with no such check."""
    if spec.fields is not None:
        return None
    test: Callable[[Any], bool]
    if spec.type == "list":
        item = _plain_scalar(spec.items, spec.item_values) if spec.items else None
        if item is None:
            return None
        each = item

        def test(v: Any) -> bool:
            return type(v) is list and all(each(x) for x in v)
    else:
        whole = _plain_scalar(spec.type, spec.values)
        if whole is None:
            return None
        test = whole
    low, high = spec.min_length, spec.max_length
    least, most = spec.minimum, spec.maximum

    def plain(value: Any) -> Any:
        if not test(value):
            return NOT_PLAIN
        if low is not None or high is not None:  # a string's characters, a list's elements
            if type(value) not in (str, list):
                return NOT_PLAIN
            size = len(value)
            if (low is not None and size < low) or (high is not None and size > high):
                return NOT_PLAIN
        if least is not None or most is not None:
            if type(value) is not int:
                return NOT_PLAIN
            if (least is not None and value < least) or (most is not None and value > most):
                return NOT_PLAIN
        return list(value) if type(value) is list else value

    return plain


def _plain_record(fields: dict[str, FieldSpec], partial: bool) -> Plain | None:
    """The plain check of a record whose every field has one (:func:`plain_check`): a dict of
    known keys, the required ones there, each value plain; the fields in the record's order."""
    checks = {key: plain_check(spec) for key, spec in fields.items()}
    order = tuple((key, check) for key, check in checks.items() if check is not None)
    if len(order) != len(checks):
        return None
    required = frozenset(k for k, spec in fields.items() if spec.required and not partial)

    def plain(value: Any) -> Any:
        if type(value) is not dict or not required <= value.keys() or value.keys() - checks:
            return NOT_PLAIN
        out = {}
        for key, check in order:
            if key in value:
                found = check(value[key])
                if found is NOT_PLAIN:
                    return NOT_PLAIN
                out[key] = found
        return out

    return plain


def record_adapter(name: str, fields: dict[str, FieldSpec], *, partial: bool = False) -> Validator:
    """A validator for a whole record (payload or data): unknown keys are refused.

    With ``partial``, no field is required (used for updates of single fields).
    """
    return Validator(
        lambda: TypeAdapter(_record(name, fields, partial=partial)), _plain_record(fields, partial)
    )


def _record(name: str, fields: dict[str, FieldSpec], *, partial: bool = False) -> Any:
    """A TypedDict of ``fields`` (an object field's, or a list of objects' elements, nested)."""
    items = {
        key: (Required if spec.required and not partial else NotRequired)[
            annotation_for(spec, f"{name}_{key}")
        ]
        for key, spec in fields.items()
    }
    make: Any = TypedDict  # a TypedDict built at runtime from the definition, by design
    record: Any = make(name, items)
    record.__pydantic_config__ = ConfigDict(extra="forbid")
    return record


def value_adapter(spec: FieldSpec) -> Validator:
    """A validator for one field's value."""
    return Validator(lambda: TypeAdapter(annotation_for(spec)), plain_check(spec))


def field_errors(error: ValidationError, prefix: str = "") -> list[dict[str, Any]]:
    """Every error of a pydantic ValidationError as ``{field, error, got}``."""
    out = []
    for e in error.errors(include_url=False):
        loc = ".".join(str(p) for p in e["loc"])
        entry: dict[str, Any] = {"field": f"{prefix}{loc}" if loc else prefix.rstrip(".")}
        if e["type"] == "extra_forbidden":
            entry["error"] = "not a declared field"
        elif e["type"] == "missing":
            entry["error"] = "required"
        else:
            entry["error"] = e["msg"]
            entry["got"] = repr(e.get("input"))[:80]
        out.append(entry)
    return out
