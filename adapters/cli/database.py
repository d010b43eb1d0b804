"""Commands that only read refuse a database that is not there, and create nothing.

Opening the store creates the database and its tables, which is what ``start`` wants and what
``list`` or ``report`` must not do: a mistyped ``--db`` would leave an empty file behind and
answer "nothing", when the truth is "no such database".
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from xieshang import StoreUnavailable, Usage
from xieshang.adapters.settings import masked_url

__all__ = ["HINT", "require_database"]

HINT = (
    "run `xieshang demo` to make a sample year (then --db xieshang-demo.db), or name your "
    "database with --db PATH or --db URL (env XIESHANG_DATABASE_URL)"
)
TABLE = "instances"


def _sqlite_has_table(path: Path) -> bool:
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error:
        return True  # it exists but cannot be read here: let the store say why
    try:
        found = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)
        ).fetchone()
    except sqlite3.DatabaseError as e:
        raise Usage(f"{str(path)!r} is not a SQLite database ({e}); {HINT}", "--db") from None
    finally:
        conn.close()
    return found is not None


def require_database(url: str) -> None:
    """Refuse a database that does not exist, is empty, or holds no xieshang tables.

    Raises:
        Usage: naming the path (or the URL, its password masked) and how to get a database.
        StoreUnavailable: a PostgreSQL server that does not answer.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        if not path.is_file():
            raise Usage(f"no database at {str(path)!r}: the file does not exist; {HINT}", "--db")
        if path.stat().st_size == 0:
            raise Usage(f"the database {str(path)!r} is an empty file; {HINT}", "--db")
        if not _sqlite_has_table(path):
            raise Usage(f"the database {str(path)!r} holds no xieshang data; {HINT}", "--db")
        return
    if parsed.get_backend_name() != "postgresql":
        return  # the store names what it does not support
    from xieshang.adapters.sql import engine_for

    engine, owned = engine_for(url)
    try:
        with engine.connect() as conn:
            found = sa.inspect(conn).has_table(TABLE)
    except sa.exc.DBAPIError as e:
        first = str(e.orig).strip().splitlines()[0] if str(e.orig).strip() else "no answer"
        raise StoreUnavailable(
            f"the database at {masked_url(url)!r} does not answer: {first}"
        ) from None
    finally:
        if owned:
            engine.dispose()
    if not found:
        raise Usage(f"the database at {masked_url(url)!r} holds no xieshang data; {HINT}", "--db")
