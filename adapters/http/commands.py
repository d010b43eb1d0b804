"""``xieshang serve`` and ``xieshang tokens create|revoke|list``, and the app factory they serve.

:func:`register_cli` adds them to the main typer app. The server is built by
:func:`app_from_env` in each worker process from the ``XIESHANG_*`` environment, so that several
workers over one PostgreSQL database are several independent, stateless processes.
"""

from __future__ import annotations

import gc
import json
import os
from typing import Annotated, Any

import typer
from fastapi import FastAPI

from xieshang import Actor, XieshangError
from xieshang.adapters.settings import command_database_url
from xieshang.adapters.sql import engine_for, upgrade

from .app import create_app
from .auth import SQLTokenStore
from .limits import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    ENV_BODY_TIMEOUT,
    ENV_HEADER_TIMEOUT,
    PROTOCOL,
)

__all__ = [
    "app_from_env",
    "register_cli",
    "served_app",
    "server_environment",
    "token_store_for",
]

FACTORY = "xieshang.adapters.http.commands:served_app"
ENV_MAX_BODY = "XIESHANG_MAX_BODY_BYTES"
WORKER_STARTUP_SECONDS = 60


def token_store_for(url: str) -> SQLTokenStore:
    """The token store in the database at ``url``, its schema created or upgraded first."""
    upgrade(url)
    return SQLTokenStore(engine_for(url, pooled=True)[0], create=False)


def app_from_env() -> FastAPI:
    """The API over the engine that the ``XIESHANG_*`` environment describes (uvicorn factory)."""
    from xieshang.adapters.settings import Settings, build_engine

    settings = Settings()
    engine = build_engine(settings)
    tokens = token_store_for(settings.database_url)
    max_body = int(os.environ.get(ENV_MAX_BODY, "1000000"))
    body_timeout = float(os.environ.get(ENV_BODY_TIMEOUT) or DEFAULT_BODY_TIMEOUT)
    return create_app(engine, tokens, max_body_bytes=max_body, body_timeout=body_timeout)


def served_app() -> FastAPI:
    """What ``xieshang serve`` runs in each server process (uvicorn factory): the app of
    :func:`app_from_env`, and then what the process made to start (the workflows compiled, the
    routes and their schemas: most of its objects) set aside from the garbage collector with
    :func:`gc.freeze`, so that a full collection walks only what requests made since, rather
    than stalling every request while it walks everything. Whoever embeds the app in a
    process of its own calls :func:`app_from_env` and decides that for itself."""
    app = app_from_env()
    gc.collect()
    gc.freeze()
    return app


def server_environment(options: Any) -> dict[str, str]:
    """The ``XIESHANG_*`` variables that give every server process the global options
    (``--workflows``, ``--clock``, ``--calendar``, ``--duties``, ``--config``) the command got:
    each process builds its engine from the environment alone."""
    env: dict[str, str] = {}
    dirs = getattr(options, "workflows", None) or []
    if dirs:
        env["XIESHANG_WORKFLOWS"] = os.pathsep.join(str(d) for d in dirs)
    for name in ("clock", "calendar", "duties", "config"):
        value = getattr(options, name, None)
        if value:
            env[f"XIESHANG_{name.upper()}"] = str(value)
    return env


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


Db = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (env XIESHANG_DATABASE_URL).", show_default=False),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 1,
    header_timeout: Annotated[
        float,
        typer.Option(
            "--header-timeout",
            min=0.1,
            help="Seconds a client may take to send a request's head; then the connection is "
            f"closed (env {ENV_HEADER_TIMEOUT}).",
        ),
    ] = DEFAULT_HEADER_TIMEOUT,
    body_timeout: Annotated[
        float,
        typer.Option(
            "--body-timeout",
            min=0.1,
            help=f"Seconds a request's body may take after its head; then 408 (env "
            f"{ENV_BODY_TIMEOUT}).",
        ),
    ] = DEFAULT_BODY_TIMEOUT,
    keep_alive: Annotated[
        int,
        typer.Option("--keep-alive", min=1, help="Seconds an idle connection is kept open."),
    ] = 5,
    db: Db = None,
) -> None:
    """Serve the HTTP API with uvicorn (SQLite by default; PostgreSQL by URL for many workers).

    A client that sends a request's head or body too slowly is cut off (--header-timeout,
    --body-timeout), so that slow clients cannot hold the server's connections.
    """
    import uvicorn

    try:
        url = command_database_url(ctx, db)
    except XieshangError as e:
        raise _fail(e.message, 2) from None
    os.environ["XIESHANG_DATABASE_URL"] = url
    os.environ[ENV_HEADER_TIMEOUT] = str(header_timeout)
    os.environ[ENV_BODY_TIMEOUT] = str(body_timeout)
    os.environ.update(server_environment(ctx.find_root().obj))
    try:
        app_from_env()  # fail here, with a message, rather than in every worker
    except XieshangError as e:
        raise _fail(e.message) from None
    uvicorn.run(
        FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=False,
        server_header=False,
        http=PROTOCOL,
        timeout_keep_alive=keep_alive,
        # a worker loads and compiles the workflows before it answers the supervisor's ping
        timeout_worker_healthcheck=WORKER_STARTUP_SECONDS,
    )


tokens_app = typer.Typer(help="Issue, revoke and list API bearer tokens.", no_args_is_help=True)


@tokens_app.command("create")
def tokens_create(
    ctx: typer.Context,
    actor: Annotated[str, typer.Option("--actor", help="id:role[,role...]@org[/unit]")],
    label: Annotated[str, typer.Option("--label", help="What the token is for.")] = "",
    db: Db = None,
    as_json: JsonFlag = False,
) -> None:
    """Issue a token for an actor; it is printed once and never stored."""
    try:
        who = Actor.parse(actor)
        store = token_store_for(command_database_url(ctx, db))
        try:
            token = store.create(who, label)
        finally:
            store.close()
    except XieshangError as e:
        raise _fail(e.message, 2) from None
    if as_json:
        typer.echo(
            json.dumps({"token": token, "actor": who.to_dict(), "label": label}, ensure_ascii=False)
        )
    else:
        typer.echo(token)


@tokens_app.command("revoke")
def tokens_revoke(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="The token, or its key from `tokens list`.")],
    db: Db = None,
) -> None:
    """Revoke a token: requests with it get 401 within a second, in every server process."""
    try:
        store = token_store_for(command_database_url(ctx, db))
        try:
            done = store.revoke(ref)
        finally:
            store.close()
    except XieshangError as e:
        raise _fail(e.message, 2) from None
    if not done:
        raise _fail(f"no token {ref!r}")
    typer.echo(f"revoked {ref[:12]}")


@tokens_app.command("list")
def tokens_list(ctx: typer.Context, db: Db = None, as_json: JsonFlag = False) -> None:
    """Every token's key, actor, label and dates (never the token itself)."""
    store = token_store_for(command_database_url(ctx, db))
    try:
        rows = store.list()
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in rows], ensure_ascii=False, indent=2))
        return
    for r in rows:
        a = r.actor
        who = f"{a.id}:{','.join(sorted(a.roles))}@{a.org}" + (f"/{a.unit}" if a.unit else "")
        state = f"revoked {r.revoked_at}" if r.revoked_at else "active"
        typer.echo(f"{r.key}  {who}  {r.label or '-'}  {r.created_at}  {state}")


def register_cli(app: typer.Typer) -> None:
    """Add ``serve`` and the ``tokens`` commands to the ``xieshang`` command line."""
    app.command("serve")(serve)
    app.add_typer(tokens_app, name="tokens")
