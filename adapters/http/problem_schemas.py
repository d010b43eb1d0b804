"""The body of every error the API returns: an RFC 9457 problem with typed extension members."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FieldErrorOut", "ProblemOut"]


class FieldErrorOut(BaseModel):
    """What is wrong with one field of a request, payload or data."""

    model_config = ConfigDict(extra="allow")

    field: str = Field(description="where: a field name or a dotted path (`body.payload.title`)")
    error: str
    got: str | None = Field(default=None, description="the value refused, shortened")
    type: str | None = Field(default=None, description="the validator's code for the error")


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
    allowed: list[str] | None = Field(
        default=None, description="what would have been allowed: triggers, roles, units, ids"
    )
    trigger: str | None = Field(default=None, description="the trigger refused")
    state: str | None = Field(default=None, description="the state the instance is in")
    guard: str | None = Field(default=None, description="the guard that refused the trigger")
    workflow: str | None = None
    kind: str | None = Field(default=None, description="what was not found: instance, ...")
    key: str | None = Field(default=None, description="the id that was not found")
    what: str | None = Field(default=None, description="what was invalid: payload, data ...")
    errors: list[FieldErrorOut] | None = Field(
        default=None, description="each field that is wrong, and why"
    )
