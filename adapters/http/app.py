"""The FastAPI application: authentication, problem answers, request limits, and the route
groups, each in its own module (workflows, instances, audit, health, live events, inbox,
tokens).

Every route acts as the actor of the bearer token and sees its org only, and of that only what
the workflows' ``read:`` rules let it read: any other instance is answered as one that does not
exist (404, the same body). Handlers are plain
functions (run in the thread pool), because the engine and its stores are synchronous.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, FastAPI
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from xieshang import Actor, Engine

from .admin import add_admin_routes, add_token_routes
from .audit import add_audit_routes
from .auth import TokenStore
from .bodies import install_request_schemas
from .contracts import install_contracts, operation_name
from .definitions import add_workflow_routes
from .docs import install_docs
from .events import add_event_routes
from .health import add_health_routes
from .inbox import add_inbox_routes
from .instances import add_instance_routes
from .limits import DEFAULT_BODY_TIMEOUT, BodyLimit, BodyTimeout
from .members import add_member_routes
from .problems import ApiProblem, install_handlers
from .reports import add_report_routes

if TYPE_CHECKING:
    from xieshang.adapters.web import ConsoleOptions

__all__ = ["create_app"]

REALM = 'Bearer realm="xieshang"'


def create_app(
    engine: Engine,
    tokens: TokenStore,
    *,
    max_body_bytes: int = 1_000_000,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    console: "ConsoleOptions | None" = None,
) -> FastAPI:
    """The HTTP API over ``engine``, authenticating with ``tokens``.

    Args:
        engine: the engine every route drives.
        tokens: where bearer tokens are looked up.
        max_body_bytes: larger request bodies get 413.
        body_timeout: seconds a request's body may take to arrive after its head; then 408.
        console: settings of the console and public pages (``xieshang.adapters.web``), which
            are served beside the API.

    Returns:
        The FastAPI application.
    """
    api = FastAPI(
        title="xieshang",
        version="0.1.0",
        description=(
            "Consultation workflows (协商) over HTTP. Authenticate with `Authorization: Bearer "
            "<token>` (issued by `xieshang tokens create`). Every command acts as the token's "
            "actor and every read sees the token's org only. Errors are RFC 9457 "
            "`application/problem+json` with a stable `code`."
        ),
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=operation_name,
    )
    install_handlers(api)
    install_docs(api)
    bearer = HTTPBearer(auto_error=False, description="a token from `xieshang tokens create`")

    remembered: Callable[[str], Actor | None] | None = getattr(tokens, "remembered", None)

    async def caller(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Actor:
        if credentials is None:
            raise ApiProblem(
                401,
                "unauthenticated",
                "a bearer token is required",
                headers={"WWW-Authenticate": REALM},
            )
        # a token held in memory is answered here, on the event loop; only a read of the store
        # goes to the thread pool (as a plain function dependency would, on every request)
        actor = remembered(credentials.credentials) if remembered is not None else None
        if actor is None:
            actor = await run_in_threadpool(tokens.lookup, credentials.credentials)
        if actor is None:
            raise ApiProblem(
                401,
                "invalid-token",
                "the bearer token is invalid or revoked",
                headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
            )
        return actor

    add_workflow_routes(api, engine, caller)
    add_instance_routes(api, engine, caller)
    add_audit_routes(api, engine, caller)
    add_health_routes(api, engine)
    add_event_routes(api, engine, caller)
    add_inbox_routes(api, engine, caller)
    if engine.duties is not None:
        add_member_routes(api, engine, caller)
    add_report_routes(api, engine, caller)
    add_token_routes(api, tokens, caller)
    add_admin_routes(api, engine, caller)
    from xieshang.adapters.web import mount_console  # the pages import this package's auth

    mount_console(api, engine, tokens, console)
    install_request_schemas(api, engine.registry)
    install_contracts(api, engine.registry)
    api.add_middleware(BodyTimeout, seconds=body_timeout)
    api.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return api
