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

__all__ = ["Validator", "annotation_for", "field_errors", "record_adapter", "value_adapter"]


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


class Validator:
    """A pydantic validator built on first use: a workflow has hundreds (a record per payload,
    one per data field) and a command uses a few. ``validate_python`` and ``dump_python`` are
    the adapter's own."""

    __slots__ = ("_adapter", "_build")

    def __init__(self, build: Callable[[], TypeAdapter[Any]]) -> None:
        self._build = build
        self._adapter: TypeAdapter[Any] | None = None

    @property
    def adapter(self) -> TypeAdapter[Any]:
        if self._adapter is None:
            self._adapter = self._build()
        return self._adapter

    def validate_python(self, value: Any) -> Any:
        return self.adapter.validate_python(value)

    def dump_python(self, value: Any, *, mode: Literal["json", "python"] = "python") -> Any:
        return self.adapter.dump_python(value, mode=mode)


def record_adapter(name: str, fields: dict[str, FieldSpec], *, partial: bool = False) -> Validator:
    """A validator for a whole record (payload or data): unknown keys are refused.

    With ``partial``, no field is required (used for updates of single fields).
    """
    return Validator(lambda: TypeAdapter(_record(name, fields, partial=partial)))


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
    return Validator(lambda: TypeAdapter(annotation_for(spec)))


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
