"""A workflow's own JSON Schemas, served at ``/workflows/{id}/schema``: its data, each
trigger's payload, its start data.

They are written by the same functions that describe start bodies in the OpenAPI document
(:mod:`.bodies`), so the route and the document say the same, and they are complete in
themselves: the free JSON values they name are in their own ``$defs``.
"""

from __future__ import annotations

import json
from typing import Any

from xieshang import Definition

from .bodies import JSON_OBJECT, JSON_VALUE, field_schema, start_data_schema

__all__ = ["workflow_schemas"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_COMPONENTS = "#/components/schemas/"
_DEFS = {"JsonValue": JSON_VALUE, "JsonObject": JSON_OBJECT}


def _standalone(schema: dict[str, Any], title: str) -> dict[str, Any]:
    """``schema`` with its references to the document's components moved to its own
    ``$defs`` (only those it uses)."""
    text = json.dumps(schema, ensure_ascii=False)
    out: dict[str, Any] = {"$schema": SCHEMA_DIALECT, "title": title, **schema}
    if _COMPONENTS not in text:
        return out
    defs = json.loads(json.dumps(_DEFS).replace(_COMPONENTS, "#/$defs/"))
    out = json.loads(text.replace(_COMPONENTS, "#/$defs/"))
    return {"$schema": SCHEMA_DIALECT, "title": title, **out, "$defs": defs}


def _payload(fields: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {name: field_schema(spec) for name, spec in fields.items()},
        "additionalProperties": False,
    }
    required = [name for name, spec in fields.items() if spec.required]
    if required:
        schema["required"] = required
    return schema


def workflow_schemas(definition: Definition) -> dict[str, Any]:
    """``{"data": ..., "payloads": {trigger: ...}, "start": ...}`` for ``definition``.

    A trigger whose transitions take different payloads (from different states) has a payload
    that is any one of them.
    """
    fields = dict(definition.data)
    data = {
        "type": "object",
        "properties": {name: field_schema(spec) for name, spec in fields.items()},
        "additionalProperties": False,
    }
    payloads: dict[str, Any] = {}
    for trigger in definition.triggers():
        variants: list[dict[str, Any]] = []
        for t in definition.transitions:
            schema = _payload(dict(t.payload or {}))
            if t.trigger == trigger and schema not in variants:
                variants.append(schema)
        one = variants[0] if len(variants) == 1 else {"anyOf": variants}
        payloads[trigger] = _standalone(one, f"{definition.id} {trigger} payload")
    return {
        "data": _standalone(data, f"{definition.id} data"),
        "payloads": payloads,
        "start": _standalone(start_data_schema(fields), f"{definition.id} start data"),
    }
