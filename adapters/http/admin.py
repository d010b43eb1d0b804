"""Administration over HTTP, for the ``admin`` role of an org: tokens (issue, list, revoke),
migrations of instances to another workflow version, suspension and repair.

An admin manages the tokens and instances of its own org only; a token it issues is always for
its org.
"""

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from xieshang import Actor, Engine

from .auth import KEY_LENGTH, MIN_KEY_LENGTH, Authenticate, TokenStore, hash_token
from .bodies import NO_NUL
from .problems import ApiProblem, documented
from .schemas import ActorOut, InstanceOut, Timestamp

__all__ = ["ADMIN_ROLE", "add_admin_routes", "add_token_routes"]

ADMIN_ROLE = "admin"
# what `id:role,role@org/unit` can spell: no separators, spaces or control characters. The
# spaces are spelled out: `\s` means other characters in other regex dialects (U+0085 is a
# space to Python and Rust, not to JavaScript), and the schema must mean one thing everywhere
_SPACES = r"\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
Name = Annotated[str, Field(min_length=1, max_length=100, pattern=rf"^[^:@,/{_SPACES}]+$")]


class TokenIn(BaseModel):
    """The actor a new token acts as; its org is the admin's."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "wb01",
                    "roles": ["handling_unit"],
                    "unit": "water_bureau",
                    "label": "水务局办公室",
                }
            ]
        },
    )

    id: Name
    roles: list[Name] = Field(min_length=1, max_length=20)
    unit: Name | None = None
    label: str = Field(default="", max_length=200, pattern=r"^[^\x00-\x1f]*$")


class TokenInfoOut(BaseModel):
    """A token as listings show it: its key (a hash prefix), never its text."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "key": "4f5386f2560f",
                    "actor": {
                        "id": "wb01",
                        "roles": ["handling_unit"],
                        "org": "guiyang",
                        "unit": "water_bureau",
                    },
                    "label": "水务局办公室",
                    "created_at": "2026-03-01T02:00:00.000000+00:00",
                    "revoked_at": None,
                }
            ]
        }
    )

    key: str
    actor: ActorOut
    label: str
    created_at: Timestamp
    revoked_at: Timestamp | None


class TokenOut(TokenInfoOut):
    """A new token: ``token`` is shown this once and stored nowhere."""

    token: str


def add_token_routes(api: FastAPI, tokens: TokenStore, caller: Authenticate) -> None:
    """Add ``GET/POST /tokens`` and ``DELETE /tokens/{key}`` for admins."""

    def admin(actor: Annotated[Actor, Depends(caller)]) -> Actor:
        if ADMIN_ROLE not in actor.roles:
            raise ApiProblem(
                403, "forbidden", "managing tokens needs the role 'admin'", allowed=[ADMIN_ROLE]
            )
        return actor

    Admin = Annotated[Actor, Depends(admin)]

    @api.get(
        "/tokens",
        response_model=list[TokenInfoOut],
        tags=["tokens"],
        responses=documented(401, 403),
    )
    def list_tokens(actor: Admin) -> list[dict[str, Any]]:
        """The org's tokens, revoked ones included (admin)."""
        return [t.to_dict() for t in tokens.list() if t.actor.org == actor.org]

    @api.post(
        "/tokens",
        status_code=201,
        response_model=TokenOut,
        tags=["tokens"],
        responses=documented(401, 403, 413, 422),
    )
    def create_token(body: TokenIn, actor: Admin) -> dict[str, Any]:
        """Issue a token for an actor of the admin's org; the token is in this answer only."""
        who = Actor(body.id, frozenset(body.roles), actor.org, body.unit)
        token = tokens.create(who, body.label)
        key = hash_token(token)[:KEY_LENGTH]
        info = next(t for t in tokens.list() if t.key == key)
        return {**info.to_dict(), "token": token}

    @api.delete(
        "/tokens/{key}",
        status_code=204,
        response_class=Response,
        tags=["tokens"],
        responses=documented(401, 403, 404, 422),
    )
    def revoke_token(
        key: Annotated[str, Path(min_length=MIN_KEY_LENGTH, max_length=64, pattern="^[0-9a-f]+$")],
        actor: Admin,
    ) -> Response:
        """Revoke one of the org's tokens by its key (admin)."""
        mine = [t for t in tokens.list() if t.actor.org == actor.org and t.key.startswith(key)]
        if len(mine) != 1:
            raise ApiProblem(
                404 if not mine else 422,
                "not-found" if not mine else "ambiguous-key",
                f"no token of this org has the key {key!r}"
                if not mine
                else f"{key!r} matches {len(mine)} tokens; give more characters",
            )
        tokens.revoke(mine[0].key)
        return Response(status_code=204)


# -- migrations, suspension and repair ---------------------------------------------------------

_State = Annotated[str, Field(min_length=1, max_length=100, pattern=NO_NUL)]
_Reason = Annotated[str, Field(min_length=1, max_length=2000, pattern=NO_NUL)]


class MigrationIn(BaseModel):
    """Move the open instances of the admin's org of one workflow to another version."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "workflow": "suggestion",
                    "to_version": 2,
                    "map": {"reviewing": "under_review"},
                    "set": {"category": "'society'"},
                    "dry_run": True,
                    "reason": "第二版",
                }
            ]
        },
    )

    workflow: _State
    to_version: int = Field(ge=1, le=2**31 - 1)
    map: dict[_State, _State] = Field(
        default_factory=dict, description="states renamed: old state -> state of the new version"
    )
    set: dict[_State, Annotated[str, Field(min_length=1, max_length=2000, pattern=NO_NUL)]] = Field(
        default_factory=dict,
        description="data field -> CEL over the old data, instance, now and the new params "
        "(null removes the field)",
    )
    dry_run: bool = Field(default=False, description="report only; change nothing")
    reason: _Reason | None = None


class MigrationPlanOut(BaseModel):
    """What the migration does to one instance, or why it cannot (``problems``)."""

    instance_id: str
    org: str
    from_version: int
    from_hash: str
    state: str
    target: str
    set: dict[str, Any]
    problems: list[str]
    migrated: bool


class MigrationOut(BaseModel):
    """A migration's report: one plan per open instance not yet on the new definition."""

    workflow: str
    to_version: int
    to_hash: str
    dry_run: bool
    migrated: int
    refused: int
    instances: list[MigrationPlanOut]


class ReasonIn(BaseModel):
    """Why (kept in the audited row)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "核查"}]})

    reason: _Reason


class SetStateIn(ReasonIn):
    """The state to put the instance in, and why."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"state": "filed", "reason": "纸质立案"}]}
    )

    state: _State


def add_admin_routes(api: FastAPI, engine: Engine, caller: Authenticate) -> None:
    """Add ``POST /admin/migrations`` and ``POST /admin/instances/{id}/suspend``, ``.../resume``
    and ``.../state`` for admins, each on its own org only."""

    def admin(actor: Annotated[Actor, Depends(caller)]) -> Actor:
        if ADMIN_ROLE not in actor.roles:
            raise ApiProblem(403, "forbidden", "this needs the role 'admin'", allowed=[ADMIN_ROLE])
        return actor

    Admin = Annotated[Actor, Depends(admin)]
    Id = Annotated[str, Path(min_length=1, max_length=200, pattern=NO_NUL)]

    @api.post(
        "/admin/migrations",
        response_model=MigrationOut,
        tags=["admin"],
        responses=documented(401, 403, 404, 413, 422),
    )
    def create_migration(body: MigrationIn, actor: Admin) -> dict[str, Any]:
        """Migrate (or with ``dry_run`` only report) the open instances of the admin's org."""
        report = engine.migrate(
            body.workflow,
            body.to_version,
            actor,
            org=actor.org,
            state_map=body.map,
            set_exprs=body.set,
            dry_run=body.dry_run,
            reason=body.reason,
        )
        return report.to_dict()

    @api.post(
        "/admin/instances/{instance_id}/suspend",
        response_model=InstanceOut,
        tags=["admin"],
        responses=documented(401, 403, 404, 409, 413, 422),
    )
    def suspend_instance(instance_id: Id, body: ReasonIn, actor: Admin) -> dict[str, Any]:
        """Suspend an instance: commands refused and timers held until it is resumed."""
        return engine.suspend(instance_id, actor, body.reason).to_dict()

    @api.post(
        "/admin/instances/{instance_id}/resume",
        response_model=InstanceOut,
        tags=["admin"],
        responses=documented(401, 403, 404, 409, 413, 422),
    )
    def resume_instance(instance_id: Id, body: ReasonIn, actor: Admin) -> dict[str, Any]:
        """Resume a suspended instance; its deadline and timers move by the time it was held."""
        return engine.resume(instance_id, actor, body.reason).to_dict()

    @api.post(
        "/admin/instances/{instance_id}/state",
        response_model=InstanceOut,
        tags=["admin"],
        responses=documented(401, 403, 404, 409, 413, 422),
    )
    def set_instance_state(instance_id: Id, body: SetStateIn, actor: Admin) -> dict[str, Any]:
        """Put an instance in a state of its definition by hand (one audited row)."""
        return engine.set_state(instance_id, body.state, actor, body.reason).to_dict()
