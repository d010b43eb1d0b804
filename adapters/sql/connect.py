"""One way in: the SQLAlchemy engine for whatever names a database (URL, store, engine).

The relay, the reports, the token store and the commands that drive them all open the database
here, so a URL is read (:func:`database_url`) and connected (:func:`sa_engine`) the same way
everywhere.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .store import database_url, sa_engine

__all__ = ["engine_for"]


def engine_for(source: Any, *, pooled: bool = False) -> tuple[sa.Engine, bool]:
    """A SQLAlchemy engine for ``source``, and whether the caller owns (and must dispose) it.

    Args:
        source: a SQLAlchemy engine (used as is), a store or an :class:`xieshang.Engine` over
            one (its ``sa_engine`` if it has one, else its ``url``), or a database URL.
        pooled: keep connections open between uses (a long-running server); otherwise each
            use connects anew with the store's connection settings (workers, commands).

    Raises:
        StoreError: a URL that names no supported database.
    """
    if isinstance(source, sa.Engine):
        return source, False
    store = getattr(source, "store", source)
    existing = getattr(store, "sa_engine", None)
    if isinstance(existing, sa.Engine):
        return existing, False
    url = getattr(store, "url", source)
    if isinstance(url, sa.URL):
        url = url.render_as_string(hide_password=False)
    if pooled:
        return sa.create_engine(database_url(str(url))), True
    return sa_engine(str(url)), True
