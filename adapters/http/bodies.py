"""What the OpenAPI document promises of request bodies and parameters, no more than the API takes.

A start body is documented per workflow (its id, and its data fields with their types, bounds
and required ones), a fire body names the triggers the deployment knows, and every free JSON
value is a :data:`JSON_VALUE`: text without NUL, integers within 64 bits. The engine refuses
anything else (:mod:`xieshang.inputs`, the data schema of the workflow), so a request the
document accepts is one the API takes, and what it refuses the document does not promise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from xieshang import PageCursor, Registry, Usage

from .problems import ApiProblem

__all__ = [
    "CURSOR",
    "ETAG",
    "JSON_OBJECT",
    "JSON_VALUE",
    "NO_NUL",
    "fire_body_schema",
    "install_request_schemas",
    "page_cursor",
    "start_body_schemas",
    "start_component",
    "start_data_schema",
]

NO_NUL = r"^[^\x00]*$"
# what `next_cursor` looks like: the ISO time of an instance's creation, `|`, its id
# a real moment only (the calendar's days, leap years included), so that every cursor the
# document admits is one the API can read: <ISO datetime>|<instance id>
_YEAR = r"(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
_LEAP = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_DAY = (
    rf"(?:{_YEAR}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    rf"|{_LEAP}-02-29)"
)
_TIME = (
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
    r"(?:[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]|Z)?"
)
CURSOR = rf"^{_DAY}{_TIME}\|[^|\x00]{{1,200}}$"


def page_cursor(text: str | None) -> PageCursor | None:
    """The ``cursor`` parameter (already matched against :data:`CURSOR`) as a position; 422
    ``invalid-cursor`` when its time is no time (``99:99:99``)."""
    if text is None:
        return None
    try:
        return PageCursor.parse(text)
    except Usage:
        raise ApiProblem(
            422,
            "invalid-cursor",
            f"cursor {text!r} is not one this API gave (a page's next_cursor)",
        ) from None


# one ETag as the API gives it ("3", or W/"3"; or the bare version), or *
ETAG = r'^ *(\*|(W/)?"?[0-9]{1,18}"?) *$'
_BOUND = 2**63 - 1
_OBJECT_REF = "#/components/schemas/JsonObject"
_REF = "#/components/schemas/JsonValue"
# No `type`: each keyword applies to its own type only (`pattern` to text, `minimum` to
# numbers, `items` to arrays ...), so the one schema is any JSON value with these bounds at every
# depth. Code generators (openapi-python-client) take it as "any value", where an `anyOf` of
# one branch per type would refer to itself through an array, which they refuse.
JSON_VALUE: dict[str, Any] = {
    "description": "any JSON value: text without NUL characters, numbers within 64 bits, at "
    "every depth",
    "pattern": NO_NUL,
    "minimum": -_BOUND,
    "maximum": _BOUND,
    "items": {"$ref": _REF},
    "propertyNames": {"pattern": NO_NUL},
    "additionalProperties": {"$ref": _REF},
}
JSON_OBJECT: dict[str, Any] = {
    "description": "a JSON object: field names without NUL characters, any JSON values",
    "type": "object",
    "propertyNames": {"pattern": NO_NUL},
    "additionalProperties": {"$ref": _REF},
}
_OBJECT = {"$ref": _OBJECT_REF}
_DATE_TIME = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-5][0-9](\.[0-9]{1,6})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def _scalar(kind: str, values: tuple[str, ...] | None) -> dict[str, Any]:
    if kind in ("string", "text"):
        return {"type": "string", "pattern": NO_NUL}
    if kind == "int":
        return {"type": "integer", "minimum": -_BOUND, "maximum": _BOUND}
    if kind == "number":
        return {"type": "number", "minimum": -_BOUND, "maximum": _BOUND}
    if kind == "bool":
        return {"type": "boolean"}
    if kind == "date":
        return {"type": "string", "format": "date"}
    if kind == "datetime":
        return {"type": "string", "format": "date-time", "pattern": _DATE_TIME}
    if kind == "enum":
        return {"type": "string", "enum": list(values or ())}
    if kind == "object":
        return dict(_OBJECT)
    return {"$ref": _REF}


def field_schema(spec: Any, *, label: str = "title") -> dict[str, Any]:
    """The JSON Schema of one data or payload field (a definition's field spec), as the engine
    validates it; its Chinese label under ``label`` (``title``, or ``description`` where code
    generators would name classes after a title)."""
    if spec.type == "list":
        items = _scalar(spec.items, spec.item_values) if spec.items else {"$ref": _REF}
        out: dict[str, Any] = {"type": "array", "items": items}
        length = ("minItems", "maxItems")
    else:
        out = _scalar(spec.type, spec.values)
        length = ("minLength", "maxLength") if out.get("type") == "string" else ("", "")
    if spec.min_length is not None and length[0]:
        out[length[0]] = spec.min_length
    if spec.max_length is not None and length[1]:
        out[length[1]] = spec.max_length
    if spec.minimum is not None:
        out["minimum"] = spec.minimum
    if spec.maximum is not None:
        out["maximum"] = spec.maximum
    if spec.label is not None:
        out[label] = spec.label.zh
    return out


def start_data_schema(fields: dict[str, Any], *, label: str = "title") -> dict[str, Any]:
    """The JSON Schema of a start's data: every field of the workflow, the required ones (those
    without a default) required, no others."""
    required = [n for n, s in fields.items() if s.required and s.default is None]
    data: dict[str, Any] = {
        "type": "object",
        "properties": {name: field_schema(spec, label=label) for name, spec in fields.items()},
        "additionalProperties": False,
    }
    if required:
        data["required"] = required
    return data


def start_component(workflow: str) -> str:
    """The name of a workflow's start body in the document's components (``proposal_handling``
    gives ``ProposalHandlingStart``)."""
    return "".join(part.capitalize() for part in workflow.split("_")) + "Start"


def _start_variant(workflow: str, fields: dict[str, Any]) -> dict[str, Any]:
    data = start_data_schema(fields, label="description")
    return {
        "type": "object",
        "description": f"Start a {workflow}.",
        "properties": {
            "workflow": {"type": "string", "enum": [workflow]},
            "data": {"$ref": f"#/components/schemas/{start_component(workflow)}Data"},
        },
        "required": ["workflow", "data"] if "required" in data else ["workflow"],
        "additionalProperties": False,
    }


def start_body_schemas(registry: Registry) -> dict[str, dict[str, Any]]:
    """The body of ``POST /instances`` as components: ``StartIn``, one variant per workflow
    chosen by its id (``ProposalStart``), and each variant's data (``ProposalStartData``)."""
    out: dict[str, dict[str, Any]] = {}
    mapping: dict[str, str] = {}
    for wf in sorted(registry, key=lambda w: w.id):
        name = start_component(wf.id)
        out[name] = _start_variant(wf.id, dict(wf.definition.data))
        out[f"{name}Data"] = start_data_schema(dict(wf.definition.data), label="description")
        mapping[wf.id] = f"#/components/schemas/{name}"
    out["StartIn"] = {
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "workflow", "mapping": mapping},
        "examples": [
            {
                "workflow": "proposal",
                "data": {"title": "关于加强社区养老服务的提案", "first_proposer": "m1"},
            }
        ],
    }
    return out


def fire_body_schema(registry: Registry) -> dict[str, Any]:
    """The body of ``POST /instances/{id}/fire``: a trigger of a workflow the deployment runs."""
    triggers = sorted({t for wf in registry for t in wf.definition.triggers()})
    return {
        "type": "object",
        "properties": {
            "trigger": {"type": "string", "enum": triggers},
            "payload": dict(_OBJECT),
            "reason": {
                "anyOf": [
                    {"type": "string", "maxLength": 2000, "pattern": NO_NUL},
                    {"type": "null"},
                ]
            },
        },
        "required": ["trigger"],
        "additionalProperties": False,
        "examples": [{"trigger": "submit", "payload": {"category": "society"}, "reason": None}],
    }


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema without its ``null`` branch: an optional query parameter or
    header is absent or has a value, and ``null`` has no spelling in a URL or a header."""
    branches = schema.get("anyOf")
    if not isinstance(branches, list):
        return schema
    kept = [b for b in branches if b != {"type": "null"}]
    if len(kept) != 1 or len(kept) == len(branches):
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    return {**kept[0], **rest}


def install_request_schemas(api: FastAPI, registry: Registry) -> None:
    """Document the start and fire bodies of ``api`` by :func:`start_body_schemas` and
    :func:`fire_body_schema` (the pydantic models read the body; the engine judges the rest),
    and its optional parameters without a ``null`` no URL or header can spell."""
    default: Callable[[], dict[str, Any]] = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is not None:
            return api.openapi_schema
        document = default()
        for operations in document["paths"].values():
            for operation in operations.values():
                for parameter in operation.get("parameters", ()):
                    parameter["schema"] = _without_null(parameter["schema"])
        components = document.setdefault("components", {}).setdefault("schemas", {})
        described = {**start_body_schemas(registry), "FireIn": fire_body_schema(registry)}
        for name, schema in described.items():
            kept = {
                k: components[name][k]
                for k in ("title", "description")
                if k in components.get(name, {})
            }
            components[name] = {**schema, **kept}
        components["JsonValue"] = JSON_VALUE
        components["JsonObject"] = JSON_OBJECT
        api.openapi_schema = document
        return document

    api.openapi = openapi  # type: ignore[method-assign]
