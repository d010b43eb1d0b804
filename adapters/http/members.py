"""``GET /members/{member}/duties``: a member's duty records of a year, the points by category
(capped) and the quotas not met, read as the caller may read them (see ``docs/duties.md``)."""

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query
from pydantic import BaseModel, ConfigDict

from xieshang import Actor, Engine
from xieshang.shared import member_year

from .auth import Authenticate
from .bodies import NO_NUL
from .problems import documented

__all__ = ["DutyRecordOut", "MemberDutiesOut", "add_member_routes"]


class DutyRecordOut(BaseModel):
    """Points a member earned by one step (the source instance and its history row)."""

    member: str
    org: str
    year: int
    category: str
    points: int
    rule: str
    instance_id: str
    seq: int
    occurred_at: str


class ShortfallOut(BaseModel):
    """A quota not met: ``have`` records above zero points of ``category``, ``need`` required."""

    category: str
    need: int
    have: int


class MemberDutiesOut(BaseModel):
    """A member's year: the total (after caps), the points earned and counted by category, the
    records above zero by category, the quotas not met, every record, and the rules' hash."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "member": "m1",
                    "year": 2024,
                    "total": 2,
                    "earned": {"attendance": 2},
                    "counted": {"attendance": 2},
                    "items": {"attendance": 1},
                    "shortfalls": [{"category": "proposal", "need": 1, "have": 0}],
                    "records": [],
                    "rules": "5925f640b87d...",
                }
            ]
        }
    )

    member: str
    year: int
    total: int
    earned: dict[str, int]
    counted: dict[str, int]
    items: dict[str, int]
    shortfalls: list[ShortfallOut]
    records: list[DutyRecordOut]
    rules: str


def add_member_routes(api: FastAPI, engine: Engine, caller: Authenticate) -> None:
    """Add ``GET /members/{member}/duties`` to ``api``, for the actor ``caller`` authenticates."""

    @api.get(
        "/members/{member}/duties",
        operation_id="member_duties",
        response_model=MemberDutiesOut,
        tags=["queries"],
        responses=documented(401, 404, 422),
    )
    def member_duties(
        member: Annotated[str, Path(min_length=1, max_length=200, pattern=NO_NUL)],
        actor: Annotated[Actor, Depends(caller)],
        year: Annotated[int, Query(ge=1900, le=9999, description="the year (UTC+8)")],
    ) -> dict[str, Any]:
        """A member's duty record of a year: the member, the office, special committees and the
        chairpersons' council of the member's org read it; for anyone else it does not exist."""
        my, rules = member_year(engine, member, year, actor)
        return {**my.to_dict(), "rules": rules.hash}
