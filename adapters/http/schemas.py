"""The request and response bodies of the HTTP API, with the examples the OpenAPI document shows.

Times are RFC 3339 text (``format: date-time``), kept as the text the engine gives (UTC,
microseconds) rather than parsed and written again. Free JSON (instance data, payloads) is a
``JsonObject`` of the document; each workflow's own schemas are at ``/workflows/{id}/schema``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

__all__ = [
    "ActorOut",
    "AvailabilityOut",
    "DeadlineOut",
    "FireIn",
    "HistoryEntryOut",
    "InstanceOut",
    "PageOut",
    "StartIn",
    "Timestamp",
    "VerifyIn",
    "WarningOut",
    "WorkflowOut",
    "WorkflowSchemasOut",
]

Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
"""A moment as RFC 3339 text, e.g. ``2026-03-01T02:05:00.000000+00:00``."""
JsonObject = Annotated[
    dict[str, Any], WithJsonSchema({"allOf": [{"$ref": "#/components/schemas/JsonObject"}]})
]
"""A JSON object (instance data, a payload), described by the document's ``JsonObject``."""
JsonSchema = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "description": "a JSON Schema (draft 2020-12)"}),
]

_INSTANCE_EXAMPLE: dict[str, Any] = {
    "id": "6f1c0e4b9a7d4c1e8f2a3b4c5d6e7f80",
    "workflow": "proposal",
    "workflow_version": 1,
    "definition_hash": "3d4f0c2a...",
    "org": "guiyang",
    "state": "submitted",
    "version": 2,
    "data": {"title": "关于加强社区养老服务的提案", "first_proposer": "m1", "category": "society"},
    "final": False,
    "created_at": "2026-03-01T02:00:00.000000+00:00",
    "updated_at": "2026-03-01T02:05:00.000000+00:00",
    "entered_at": "2026-03-01T02:05:00.000000+00:00",
    "due_at": None,
    "due_provisional": [],
    "due_basis": None,
    "overdue": False,
    "parent_id": None,
    "unit": None,
    "suspended_at": None,
}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartIn(_In):
    """Start an instance. The actor is the token's: a body cannot name one."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "workflow": "proposal",
                    "data": {"title": "关于加强社区养老服务的提案", "first_proposer": "m1"},
                }
            ]
        },
    )

    workflow: str = Field(min_length=1, max_length=100, description="the workflow id")
    data: dict[str, Any] = Field(default_factory=dict, description="the instance's data fields")


class FireIn(_In):
    """Fire a trigger on an instance."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"trigger": "submit", "payload": {"category": "society"}, "reason": None}]
        },
    )

    trigger: str = Field(min_length=1, max_length=100)
    payload: dict[str, Any] = Field(default_factory=dict)
    reason: str | None = Field(default=None, max_length=2000)


class VerifyIn(_In):
    """Verify one instance, or (without ``instance_id``) every instance of the caller's org."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"instance_id": None}]}
    )

    instance_id: str | None = Field(default=None, max_length=200, pattern=r"^[^\x00]*$")


class InstanceOut(BaseModel):
    """An instance as stored. Its ``version`` is also the response's ETag. ``data`` holds the
    fields the caller may read (their schema: ``/workflows/{workflow}/schema``)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_INSTANCE_EXAMPLE]})

    id: str
    workflow: str
    workflow_version: int
    definition_hash: str
    org: str
    state: str
    version: int
    data: JsonObject
    final: bool
    created_at: Timestamp
    updated_at: Timestamp
    entered_at: Timestamp
    due_at: Timestamp | None
    due_provisional: list[int] = Field(
        default_factory=list,
        description="years the deadline was counted on that had only provisional holiday data "
        "(no official schedule yet); empty when the deadline is final",
    )
    due_basis: str | None = Field(
        default=None, description="the calendar the deadline was counted on, year by year"
    )
    overdue: bool
    parent_id: str | None
    unit: str | None
    suspended_at: Timestamp | None = Field(
        default=None,
        description="since when the instance is suspended (only `resume` is allowed); null when "
        "it runs",
    )


class ActorOut(BaseModel):
    """Who acted: an id, roles, and the org and unit it acts for (absent for the engine's own
    ``system`` actor, and a unit only for an actor of one)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"id": "wb01", "roles": ["handling_unit"], "org": "guiyang", "unit": "water_bureau"}
            ]
        }
    )

    id: str
    roles: list[str]
    org: str | None = None
    unit: str | None = None


class DeadlineOut(BaseModel):
    """The deadline a step set: when it falls and, counted in working days, the calendar it was
    counted on and the years of it that were provisional."""

    due_at: Timestamp
    basis: str | None = None
    provisional: list[int] | None = None


class WarningOut(BaseModel):
    """A soft rule that a step would record (or recorded): its code and message."""

    code: str
    message: str


class HistoryEntryOut(BaseModel):
    """One row of an instance's history, hash-chained to the row before. ``payload`` is what
    the step was given (for a reader below ``data``, its public fields)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "instance_id": "6f1c0e4b9a7d4c1e8f2a3b4c5d6e7f80",
                    "seq": 2,
                    "workflow": "proposal",
                    "workflow_version": 1,
                    "definition_hash": "3d4f0c2a...",
                    "trigger": "submit",
                    "source": "draft",
                    "target": "submitted",
                    "actor": {"id": "m1", "roles": ["member"], "org": "guiyang"},
                    "role": "member",
                    "reason": None,
                    "payload": {"category": "society"},
                    "visibility": "public",
                    "occurred_at": "2026-03-01T02:05:00.000000+00:00",
                    "recorded_at": "2026-03-01T02:05:00.001000+00:00",
                    "command_id": None,
                    "prev_hash": "9a0b...",
                    "hash": "c1d2...",
                    "parent_id": None,
                }
            ]
        }
    )

    instance_id: str
    seq: int
    workflow: str
    workflow_version: int
    definition_hash: str
    trigger: str
    source: str | None
    target: str
    actor: ActorOut
    role: str
    reason: str | None
    payload: JsonObject
    visibility: str
    occurred_at: Timestamp
    recorded_at: Timestamp
    command_id: str | None
    prev_hash: str
    hash: str
    parent_id: str | None
    deadline: DeadlineOut | None = Field(
        default=None,
        description="the deadline this step set: due_at, and the calendar basis and "
        "provisional years when it was counted in working days",
    )
    warnings: list[WarningOut] | None = Field(
        default=None,
        description="the soft checks this step passed with a warning: code and message",
    )
    unit: str | None = Field(
        default=None, description="on a creation's row, the unit the instance is bound to"
    )
    seal: dict[str, str] | None = Field(
        default=None,
        description="per payload field, the salt of its digest (`salt:...`) or, for a field "
        "redacted since, the digest kept in its place (`redacted:...`); absent on rows written "
        "before fields were sealed",
    )


class AvailabilityOut(BaseModel):
    """A trigger that can fire from the current state, and whether the caller may fire it:
    now as it is (``allowed``), with a payload that passes (``needs_payload``, its JSON Schema
    in ``payload_schema``), or not (``reason``)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "trigger": "file",
                    "to": "filed",
                    "allowed": False,
                    "reason": "actor 'm1' with roles ['member'] may not fire 'file'; ...",
                    "needs_payload": False,
                    "payload_schema": None,
                    "warnings": [],
                },
                {
                    "trigger": "submit",
                    "to": "submitted",
                    "allowed": False,
                    "reason": "needs a payload (required category; the guard reads it)",
                    "needs_payload": True,
                    "payload_schema": {
                        "type": "object",
                        "properties": {"category": {"enum": ["economy", "society"]}},
                        "required": ["category"],
                    },
                    "warnings": [],
                },
            ]
        }
    )

    trigger: str
    to: str
    allowed: bool = Field(description="fires now as it is, with no payload")
    reason: str | None = Field(description="why not, or what the payload must give")
    needs_payload: bool = Field(
        default=False,
        description="nothing but the payload stands in the way: whether it passes depends on it",
    )
    payload_schema: JsonSchema | None = Field(
        default=None, description="the JSON Schema of the trigger's payload, if it takes one"
    )
    warnings: list[WarningOut] = Field(
        default_factory=list,
        description="the soft rules that would warn if it fired now (those not reading the "
        "payload)",
    )


class PageOut(BaseModel):
    """One page of instances; pass ``next_cursor`` as ``cursor`` for the next page."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [_INSTANCE_EXAMPLE], "next_cursor": None}]}
    )

    items: list[InstanceOut]
    next_cursor: str | None


class TitleOut(BaseModel):
    """A title in Chinese, and in English if the definition gives one."""

    zh: str
    en: str | None = None


class WorkflowOut(BaseModel):
    """A workflow the deployment runs (its newest version)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "proposal",
                    "version": 1,
                    "title": {"zh": "提案办理", "en": "Proposal handling"},
                    "description": None,
                    "hash": "3d4f0c2a...",
                    "states": ["draft", "submitted", "closed"],
                    "triggers": ["submit", "file"],
                }
            ]
        }
    )

    id: str
    version: int
    title: TitleOut
    description: str | None
    hash: str
    states: list[str]
    triggers: list[str]


class WorkflowSchemasOut(BaseModel):
    """A workflow's JSON Schemas (draft 2020-12), each complete in itself: its instances' data,
    each trigger's payload, and the data a start takes."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "data": {"type": "object", "properties": {"title": {"type": "string"}}},
                    "payloads": {
                        "file": {
                            "type": "object",
                            "properties": {"number": {"type": "string", "maxLength": 32}},
                            "required": ["number"],
                        }
                    },
                    "start": {"type": "object", "required": ["title", "first_proposer"]},
                }
            ]
        }
    )

    data: JsonSchema = Field(
        description="an instance's data: every field it may hold, none required (a field is "
        "set by the steps that set it, and a reader below `data` sees only public fields)"
    )
    payloads: dict[str, JsonSchema] = Field(
        description="per trigger, its payload (an object with no fields when it takes none)"
    )
    start: JsonSchema = Field(description="the data a start takes, its required fields required")
