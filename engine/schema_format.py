"""The JSON Schema of a workflow file (``xieshang schema``, ``workflow.schema.json``): the
definition model's schema with the shorthands and the factoring the loader accepts."""

from __future__ import annotations

from typing import Any

from .definition import IDENT, Definition

__all__ = ["SCHEMA_DIALECT", "SCHEMA_TITLE", "schema_json"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_TITLE = "xieshang workflow definition"

# -- JSON Schema -------------------------------------------------------------------------------

_LABEL_REF = "#/$defs/Label"
_SHORT_LABEL: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 500}


def _accepts_string(options: list[Any]) -> bool:
    return any(isinstance(o, dict) and o.get("type") == "string" for o in options)


def _widen(node: Any) -> Any:
    """Let the schema accept the shorthand the loader accepts: a label written as a string."""
    if isinstance(node, list):
        return [_widen(n) for n in node]
    if not isinstance(node, dict):
        return node
    if node == {"$ref": _LABEL_REF}:
        return {"anyOf": [node, dict(_SHORT_LABEL)]}
    options = node.get("anyOf")
    if isinstance(options, list) and {"$ref": _LABEL_REF} in options:
        widened = [o if o == {"$ref": _LABEL_REF} else _widen(o) for o in options]
        if not _accepts_string(options):
            widened.append(dict(_SHORT_LABEL))
        return {**{k: _widen(v) for k, v in node.items() if k != "anyOf"}, "anyOf": widened}
    return {k: _widen(v) for k, v in node.items()}


def schema_json() -> dict[str, Any]:
    """The JSON Schema of a workflow file, for editors and CI (shipped as ``workflow.schema.json``).

    It is the definition model's schema with the spellings of the YAML (``from``, ``in``) and the
    shorthands the loader accepts: a label as a plain string, one ``from`` state as a string,
    one ``cascade`` entry without its list.
    """
    schema: dict[str, Any] = _widen(Definition.model_json_schema(by_alias=True))
    step = schema["$defs"]["TransitionSpec"]["properties"]
    # one state for `from`, one entry for `cascade`, besides a list of them
    for key, single in (("from", {"type": "string"}), ("cascade", {"$ref": "#/$defs/CascadeSpec"})):
        many = step[key]
        if many.get("type") == "array":
            kept = {k: v for k, v in many.items() if k in {"title", "description", "default"}}
            array = {k: v for k, v in many.items() if k not in kept}
            step[key] = {**kept, "anyOf": [single, array]}
    _factoring(schema)
    return {"$schema": SCHEMA_DIALECT, **schema, "title": SCHEMA_TITLE}


def _factoring(schema: dict[str, Any]) -> None:
    """Add the factoring the loader expands: ``types``, ``role_groups``, ``let`` at the top, a
    named type wherever a field's ``type`` or ``items`` is, ``branches`` in a transition."""
    defs = schema["$defs"]
    names = {"type": "string", "pattern": IDENT}
    field = defs["FieldSpec"]["properties"]
    field["type"] = {"anyOf": [field["type"], {**names, "description": "a type of `types:`"}]}
    builtin, null = field["items"]["anyOf"]
    field["items"]["anyOf"] = [builtin, {**names, "description": "a type of `types:`"}, null]
    label = {"anyOf": [{"$ref": _LABEL_REF}, dict(_SHORT_LABEL)]}
    fields = {"type": "object", "additionalProperties": {"$ref": "#/$defs/FieldSpec"}}
    defs["NamedType"] = {
        "description": "a named type: an enum's values, or an object's fields",
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "enum": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "label": label,
                },
                "required": ["enum"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {"fields": {**fields, "minProperties": 1}, "label": label},
                "required": ["fields"],
                "additionalProperties": False,
            },
        ],
    }
    top = schema["properties"]
    top["types"] = {
        "description": "named types: {satisfaction: {enum: [...]}, task: {fields: {...}}}, used "
        "as a field's type or a list's items",
        "type": "object",
        "propertyNames": names,
        "additionalProperties": {"$ref": "#/$defs/NamedType"},
    }
    top["role_groups"] = {
        "description": "named lists of roles, usable wherever a list of roles is",
        "type": "object",
        "propertyNames": names,
        "additionalProperties": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    }
    top["let"] = {
        "description": "named CEL expressions, written let.NAME where they are used",
        "type": "object",
        "propertyNames": names,
        "additionalProperties": {"type": "string", "minLength": 1},
    }
    step = defs["TransitionSpec"]
    branch = {k: v for k, v in step["properties"].items() if k not in ("trigger", "from")}
    defs["Branch"] = {
        "description": "one target of a transition with branches: the first whose guard holds",
        "type": "object",
        "properties": branch,
        "required": ["to"],
        "additionalProperties": False,
    }
    step["properties"]["branches"] = {
        "description": "several guarded targets of one trigger, in order: the first whose guard "
        "holds is taken; only the last may go without a guard",
        "type": "array",
        "items": {"$ref": "#/$defs/Branch"},
        "minItems": 1,
    }
    step["required"] = [k for k in step["required"] if k != "to"]
    step["oneOf"] = [{"required": ["to"]}, {"required": ["branches"]}]
