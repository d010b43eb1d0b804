"""``POST /audit/verify``: check the hash chains and replays of the caller's org's histories
(auditor, admin)."""

from typing import Annotated, Any

from fastapi import Depends, FastAPI
from pydantic import BaseModel, ConfigDict, Field

from xieshang import Actor, Engine, NotFound, PageCursor
from xieshang import Query as StoreQuery

from .auth import Authenticate
from .problems import ApiProblem, documented
from .schemas import VerifyIn

__all__ = ["AUDIT_ROLES", "VerifyOut", "VerifyProblemOut", "add_audit_routes"]

AUDIT_ROLES = frozenset({"auditor", "admin"})


class VerifyProblemOut(BaseModel):
    """One broken history: the instance, the first row that does not verify, and why."""

    model_config = ConfigDict(extra="allow")

    instance_id: str | None
    seq: int | None = None
    kind: str
    message: str
    position: int | None = Field(default=None, description="the ledger position of a finding")


class VerifyOut(BaseModel):
    """How many instances were checked, and one problem per broken history (none: all good)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"checked": 12, "problems": []}]})

    checked: int
    problems: list[VerifyProblemOut]


def add_audit_routes(api: FastAPI, engine: Engine, caller: Authenticate) -> None:
    """Add ``POST /audit/verify`` to ``api``, for the actor ``caller`` authenticates."""
    Caller = Annotated[Actor, Depends(caller)]

    @api.post(
        "/audit/verify",
        operation_id="verify",
        response_model=VerifyOut,
        tags=["audit"],
        responses=documented(401, 403, 404, 413, 422),
    )
    def verify(body: VerifyIn, actor: Caller) -> dict[str, Any]:
        """Check the hash chain and replay of one instance, or of all the org's (auditor, admin)."""
        if not actor.roles & AUDIT_ROLES:
            raise ApiProblem(
                403,
                "forbidden",
                f"verifying histories needs one of the roles {sorted(AUDIT_ROLES)}",
                allowed=sorted(AUDIT_ROLES),
            )
        if body.instance_id is not None:
            # a chain check shows no data: the org decides, not the workflow's read rules
            found = engine.store.load(body.instance_id, fresh=True)
            if found is None or found.org != actor.org:
                raise NotFound("instance", body.instance_id)
            return {"checked": 1, "problems": engine.verify(body.instance_id)}
        checked, problems = 0, []
        after: PageCursor | None = None
        while True:
            page = engine.store.query(StoreQuery(org=actor.org, limit=500, after=after))
            for i in page:
                checked += 1
                problems += engine.verify(i.id)
            if len(page) < 500:
                return {"checked": checked, "problems": problems}
            after = PageCursor.of(page[-1])
