"""Named types (``types:``): an enum's values or an object's fields, named once and used as a
field's ``type`` or a list's ``items``; written out into plain field specs at load.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

from .fields import IDENT
from .shape_errors import suggest
from .yamlsafe import Path

if TYPE_CHECKING:
    from .factoring import _Expander

__all__ = ["BUILTIN_TYPES", "NamedTypes"]

BUILTIN_TYPES = (
    "string", "text", "int", "number", "bool", "enum", "date", "datetime", "list", "object"
)  # fmt: skip


class NamedTypes:
    """The types of one file, and the field specs they write out."""

    def __init__(self, ex: _Expander) -> None:
        self.ex = ex
        self.data = ex.data
        self.types: dict[str, Any] = {}
        self.resolved: dict[str, dict[str, Any]] = {}

    def add(self, code: str, name: str, message: str, path: Path, *, lose: bool = True) -> None:
        self.ex.add(code, name, message, path, lose=lose)

    def read(self, types: Any) -> None:
        if types is None:
            return
        if not isinstance(types, dict):
            self.add("XS135", "bad-type", "types is a mapping of names to types", ("types",))
            return
        for name, spec in types.items():
            at: Path = ("types", name)
            problem = _type_problem(name, spec)
            if problem is not None:
                self.add("XS135", "bad-type", problem, at)
                continue
            self.types[name] = spec

    def field_maps(self) -> list[tuple[Path, dict[str, Any]]]:
        out: list[tuple[Path, dict[str, Any]]] = []
        if isinstance(self.data.get("data"), dict):
            out.append((("data",), self.data["data"]))
        for k, step in enumerate(self.data.get("transitions") or ()):
            if isinstance(step, dict) and isinstance(step.get("payload"), dict):
                out.append((("transitions", k, "payload"), step["payload"]))
        return out

    def field(self, path: Path, spec: Any, stack: tuple[str, ...] = ()) -> Any:
        """One field spec with its named types written out (its nested fields too)."""
        if not isinstance(spec, dict):
            return spec
        spec = dict(spec)
        kind = spec.get("type")
        if isinstance(kind, str) and kind not in BUILTIN_TYPES:
            named = self.named(kind, (*path, "type"), stack)
            spec.pop("type")
            spec = {**named, **spec} if named else {"type": "object"}
        items = spec.get("items")
        if isinstance(items, str) and items not in BUILTIN_TYPES:
            named = self.named(items, (*path, "items"), stack)
            spec.pop("items")
            if named.get("type") == "enum":
                spec = {"items": "enum", "item_values": named["values"], **spec}
            elif named:
                spec = {"items": "object", "fields": named["fields"], **spec}
        if isinstance(spec.get("fields"), dict):
            spec["fields"] = {
                k: self.field((*path, "fields", k), v, stack) for k, v in spec["fields"].items()
            }
        return spec

    def named(self, name: str, path: Path, stack: tuple[str, ...]) -> dict[str, Any]:
        """The plain spec a named type stands for (empty when it is unknown or in a cycle)."""
        if name in stack:
            cycle = " -> ".join((*stack[stack.index(name) :], name))
            self.add("XS136", "type-cycle", f"type {name!r} contains itself: {cycle}", path)
            self.ex.lost.add(path[:-1])
            return {}
        if name not in self.types:
            known = [*BUILTIN_TYPES, *self.types]
            self.add(
                "XS134",
                "unknown-type",
                f"unknown type {name!r}" + (suggest(name, known) or "; types: " + ", ".join(known)),
                path,
                lose=False,
            )
            self.ex.lost.add(path[:-1])
            return {}
        if name not in self.resolved:
            spec = self.types[name]
            if "enum" in spec:
                plain: dict[str, Any] = {"type": "enum", "values": list(spec["enum"])}
            else:
                fields = {
                    k: self.field(("types", name, "fields", k), v, (*stack, name))
                    for k, v in spec["fields"].items()
                }
                plain = {"type": "object", "fields": fields}
            if "label" in spec:
                plain["label"] = spec["label"]
            self.resolved[name] = plain
        return copy.deepcopy(self.resolved[name])


def _type_problem(name: Any, spec: Any) -> str | None:
    if not isinstance(name, str) or not re.match(IDENT, name):
        return f"type name {name!r} is not a lower_snake_case name"
    if name in BUILTIN_TYPES:
        return f"{name!r} is a built-in type; a named type needs a name of its own"
    shape = "a type is {enum: [a, b]} or {fields: {name: {type: string}}}, with an optional label"
    if not isinstance(spec, dict) or len({"enum", "fields"} & set(spec)) != 1:
        return shape
    if set(spec) - {"enum", "fields", "label"}:
        extra = sorted(set(spec) - {"enum", "fields", "label"})
        return f"unknown key {extra[0]!r} in type {name!r}; {shape}"
    enum = spec.get("enum")
    if "enum" in spec and not (
        isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum)
    ):
        return "an enum type lists its values as text: {enum: [satisfied, unsatisfied]}"
    fields = spec.get("fields")
    if "fields" in spec and not (isinstance(fields, dict) and fields):
        return "an object type maps its field names to fields: {fields: {unit: {type: string}}}"
    return None
