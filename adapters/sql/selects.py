"""The pages of a :class:`xieshang.Query` as the SQL store reads them (mixed into ``SQLStore``).

A page is one select (see :mod:`.queries`). On PostgreSQL, a scoped page whose principals all
read few instances (see ``narrow``) is the union of their walks along their reader rows: it runs
on one plan made for any values, under :data:`.queries.WALK_SETTINGS`, since planning the
union for its values costs more than reading it. An inbox's select names the stored definitions the
engine has not loaded, so its text depends on which definitions are stored. On PostgreSQL they
are read in the same round trip as the page, and the text made from those last seen: the page
holds when they are still the same (definitions are only ever added, so a definition stored
after the page was read cannot have instances on it), and is read again, from a new text,
when one was added.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg

from xieshang import Instance, Query

from .errors import DRIVER_ERRORS, plain
from .queries import WALK_SETTINGS, read_generic
from .rows import INSTANCE_COLUMNS, instance_of

if TYPE_CHECKING:
    from collections.abc import Callable

    from .statements import Statements

__all__ = ["QueryReads"]

Stored = tuple[tuple[str, str], ...]  # the stored definitions: (hash, workflow), sorted


class QueryReads:
    """What :class:`SQLStore` does with queries; it gives ``_read``, ``_get``, ``_put``,
    ``_sql``, ``_host``, ``narrow`` and ``postgres``."""

    _stored: Stored | None = None  # the stored definitions last read (PostgreSQL)

    if TYPE_CHECKING:
        _sql: Statements
        _host: Any
        postgres: bool
        _read: Callable[..., list[Any]]
        _get: Callable[[], Any]
        _put: Callable[..., None]
        narrow: Callable[[Query], tuple[bool, ...] | None]

    def query(self, query: Query) -> list[Instance]:
        return [instance_of(r) for r in self._selected(query, levels=False)]

    def query_read(self, query: Query) -> list[tuple[Instance, int]]:
        if query.readers is None:
            return [(i, 0) for i in self.query(query)]
        end = len(INSTANCE_COLUMNS)
        return [(instance_of(r[:end]), int(r[end])) for r in self._selected(query, levels=True)]

    def _selected(self, query: Query, levels: bool) -> list[Any]:
        if query.acts is None:
            narrow = self.narrow(query)
            sql, params = self._sql.query(query, levels=levels, narrow=narrow)
            if self.postgres and narrow is not None and self._host is None:
                return self._generic(sql, params, settings=WALK_SETTINGS)[0]
            return self._read(sql, params, prepare=True, raw=True)
        if self.postgres and self._host is None:
            return self._inbox(query, levels)
        known = self._read(self._sql.definitions, prepare=True)
        sql, params = self._sql.query(query, known, levels=levels)
        return self._read(sql, params, prepare=True, raw=True)  # SQLite, or the host's connection

    def _inbox(self, query: Query, levels: bool) -> list[Any]:
        """An inbox's page on PostgreSQL, and the stored definitions, in one round trip."""
        known = self._stored
        if known is None:
            known = _sorted(self._read(self._sql.definitions, prepare=True))
        while True:
            sql, params = self._sql.query(query, known, levels=levels)
            rows, stored = self._generic(sql, params, also=self._sql.definitions)
            self._stored = _sorted(stored)
            if self._stored == known:
                return rows
            known = self._stored

    def _generic(
        self,
        sql: str,
        params: Any,
        also: str | None = None,
        settings: tuple[tuple[str, str], ...] = (),
    ) -> tuple[list[Any], list[Any]]:
        """:func:`.queries.read_generic` on a connection of the store (PostgreSQL)."""
        conn, broken = self._get(), False
        try:
            return read_generic(conn, psycopg.RawCursor(conn), sql, params, also, settings)
        except DRIVER_ERRORS as e:
            broken = True
            raise plain(e) from e
        finally:
            self._put(conn, broken)


def _sorted(rows: list[Any]) -> Stored:
    return tuple(sorted((str(r[0]), str(r[1])) for r in rows))
