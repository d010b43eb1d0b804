"""The request and response bodies of the HTTP API, with the examples the OpenAPI document shows."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AvailabilityOut",
    "FireIn",
    "HealthOut",
    "HistoryEntryOut",
    "InstanceOut",
    "PageOut",
    "ProblemOut",
    "StartIn",
    "VerifyIn",
    "VerifyOut",
    "WarningOut",
    "WorkflowOut",
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
    """An instance as stored. Its ``version`` is also the response's ETag."""

    model_config = ConfigDict(json_schema_extra={"examples": [_INSTANCE_EXAMPLE]})

    id: str
    workflow: str
    workflow_version: int
    definition_hash: str
    org: str
    state: str
    version: int
    data: dict[str, Any]
    final: bool
    created_at: str
    updated_at: str
    entered_at: str
    due_at: str | None
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


class HistoryEntryOut(BaseModel):
    """One row of an instance's history, hash-chained to the row before."""

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
    actor: dict[str, Any]
    role: str
    reason: str | None
    payload: dict[str, Any]
    visibility: str
    occurred_at: str
    recorded_at: str
    command_id: str | None
    prev_hash: str
    hash: str
    parent_id: str | None
    deadline: dict[str, Any] | None = Field(
        default=None,
        description="the deadline this step set: due_at, and the calendar basis and "
        "provisional years when it was counted in working days",
    )
    warnings: list[dict[str, Any]] | None = Field(
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


class WarningOut(BaseModel):
    """A soft rule that a step would record (or recorded): its code and message."""

    code: str
    message: str


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
    payload_schema: dict[str, Any] | None = Field(
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
    title: dict[str, str | None]
    description: str | None
    hash: str
    states: list[str]
    triggers: list[str]


class VerifyOut(BaseModel):
    """How many instances were checked, and one problem per broken history (none: all good)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"checked": 12, "problems": []}]})

    checked: int
    problems: list[dict[str, Any]]


class HealthOut(BaseModel):
    """The process answers (health), or the store answers too (readiness)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: str


class ProblemOut(BaseModel):
    """An RFC 9457 problem: ``code`` is stable; other members name what would have been allowed."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "/problems/transition-not-allowed",
                    "title": "Conflict",
                    "status": 409,
                    "detail": "'file' cannot fire in state 'submitted' (only from under_review); "
                    "'s1' may fire now: return_for_revision, start_review",
                    "code": "transition-not-allowed",
                    "instance": "/instances/6f1c0e4b9a7d4c1e8f2a3b4c5d6e7f80/fire",
                    "trigger": "file",
                    "state": "submitted",
                    "allowed": ["return_for_revision", "start_review"],
                }
            ]
        },
    )

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
