"""The format's common pieces: labels, names, the typed fields of data and payloads, params.

Part of the definition model (:mod:`xieshang.definition` gathers it); pydantic v2, frozen,
``extra="forbid"``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["IDENT", "FieldSpec", "FieldType", "Ident", "Label", "ParamSpec", "ParamType"]

IDENT = r"^[a-z][a-z0-9_]*$"
Ident = Annotated[str, Field(pattern=IDENT, max_length=64)]
FieldType = Literal[
    "string", "text", "int", "number", "bool", "enum", "date", "datetime", "list", "object"
]
ParamType = Literal["int", "number", "string", "bool", "duration", "list"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Label(_Model):
    """A text shown to people: Chinese first, English optional."""

    zh: str = Field(min_length=1, max_length=500)
    en: str | None = Field(default=None, max_length=500)


def _label_from_str(value: Any) -> Any:
    return {"zh": value} if isinstance(value, str) else value


class FieldSpec(_Model):
    """A typed field of instance data or of a transition's payload."""

    type: FieldType
    required: bool = False
    label: Label | None = None
    values: tuple[str, ...] | None = Field(default=None, description="allowed values of an enum")
    items: FieldType | None = Field(default=None, description="type of the elements of a list")
    item_values: tuple[str, ...] | None = Field(
        default=None, description="allowed values when the elements of a list are enums"
    )
    max_length: int | None = Field(default=None, ge=1)
    min_length: int | None = Field(default=None, ge=0)
    minimum: float | None = None
    maximum: float | None = None
    default: Any = None
    public: bool = Field(default=False, description="included in the data of emitted events")
    fields: dict[str, FieldSpec] | None = Field(
        default=None,
        description="the fields of an object, or of each element of a list of objects (items: "
        "object), checked on input like a payload's: unknown keys refused, required ones needed",
    )

    _norm_label = field_validator("label", mode="before")(_label_from_str)

    @model_validator(mode="after")
    def _consistent(self) -> FieldSpec:
        if self.type == "enum" and not self.values:
            raise ValueError("an enum field needs 'values'")
        if self.type != "enum" and self.values is not None:
            raise ValueError(f"'values' is only for enum fields, not {self.type}")
        if self.type != "list" and (self.items is not None or self.item_values is not None):
            raise ValueError(f"'items' is only for list fields, not {self.type}")
        if self.items == "enum" and not self.item_values:
            raise ValueError("a list of enums needs 'item_values'")
        if self.fields is not None and "object" not in (self.type, self.items):
            raise ValueError(
                f"'fields' is only for an object or a list of objects, not {self.type}"
            )
        bad = [k for k in self.fields or () if not re.match(IDENT, k)]
        if bad:
            raise ValueError(f"field names must be lower_snake_case identifiers, not {bad}")
        return self


class ParamSpec(_Model):
    """A number that differs from place to place, with its default (overridable per deployment)."""

    type: ParamType
    default: Any
    minimum: float | None = Field(
        default=None, description="the smallest value an int or number param may take"
    )
    label: Label | None = None
    description: str | None = None
    values: tuple[str, ...] | None = Field(
        default=None,
        description="the values a string param may take, or the elements of a list param",
    )

    _norm_label = field_validator("label", mode="before")(_label_from_str)

    @model_validator(mode="after")
    def _minimum_of_a_number(self) -> ParamSpec:
        if self.minimum is not None and self.type not in ("int", "number"):
            raise ValueError(f"'minimum' is only for int and number params, not {self.type}")
        return self
