"""Mount the console and the public page on the API's application: same process, same tokens.

Sessions and ratings live in the engine's database when it has one (so several server
processes share them), else in memory beside a memory store.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from xieshang import Engine
from xieshang.adapters.http.auth import TokenStore
from xieshang.adapters.sql import engine_for

from .board_pages import add_board_pages
from .context import ConsoleOptions, Pages
from .inbox_pages import add_inbox_pages
from .instance_pages import add_instance_pages
from .present import Labels
from .public_pages import add_public_pages
from .ratings import MemoryRatings, RatingStore, SQLRatings
from .sessions import MemorySessionStore, SessionStore, SQLSessionStore
from .signin import add_signin_routes

__all__ = ["STATIC_PATH", "mount_console"]

STATIC_PATH = "/console-static"


def _stores(
    engine: Engine, tokens: TokenStore, options: ConsoleOptions
) -> tuple[SessionStore, RatingStore, sa.Engine | None]:
    store = engine.store
    has_sql = getattr(store, "sa_engine", None) is not None or getattr(store, "url", None)
    db = engine_for(engine, pooled=True)[0] if has_sql else None
    token_db = getattr(tokens, "engine", None)
    sessions: SessionStore = (
        SQLSessionStore(token_db) if isinstance(token_db, sa.Engine) else MemorySessionStore(tokens)
    )
    ratings: RatingStore = (
        SQLRatings(db, options.rating_limit)
        if db is not None
        else MemoryRatings(options.rating_limit)
    )
    return sessions, ratings, db


def mount_console(
    api: FastAPI, engine: Engine, tokens: TokenStore, options: ConsoleOptions | None = None
) -> Pages:
    """Add the console (``/signin``, ``/``, ``/i/{id}``, ``/board``) and the public page
    (``/public/{org}``) to ``api``, and their assets under :data:`STATIC_PATH`; none of them is
    in the OpenAPI document. Returns the state the pages share, also kept as
    ``api.state.console`` (``close()`` it to let go of its database connections)."""
    options = options or ConsoleOptions()
    sessions, ratings, db = _stores(engine, tokens, options)
    pages = Pages(engine, sessions, ratings, options, Labels(engine.registry), db)
    api.state.console = pages
    api.mount(
        STATIC_PATH,
        StaticFiles(directory=str(Path(__file__).parent / "static")),
        name="console-static",
    )
    add_signin_routes(api, pages)
    add_inbox_pages(api, pages)
    add_instance_pages(api, pages)
    add_board_pages(api, pages)
    add_public_pages(api, pages)
    return pages
