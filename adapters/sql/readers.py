"""The reader principals of instances as the SQL store serves them: from its cache while the
cached row's version holds, else from the ``readers`` table; and the count of in-place rewrites
(``cache_epochs``) that tells a process another one rewrote readers it holds."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from xieshang import Query

from .cache import RowCache

__all__ = ["COUNT_SECONDS", "EPOCH_SECONDS", "FEW", "FEW_FILTERED", "ReaderReads"]

# how long cached readers may go unchecked against another process's rewrite of them in place
EPOCH_SECONDS = 1.0
# A principal with fewer reader rows than these reads "few" instances: a scoped page is read
# from its rows (in page order) rather than along the instances, each tested for the actor.
# Filtered (by workflow, state, unit...), its rows are walked until a page of them passes, so
# the bound is lower: past it, the instances' own index for the filter walks less.
FEW = 50_000
FEW_FILTERED = 2_000
COUNT_SECONDS = 300.0  # how long a principal's count is trusted (it decides speed, never rows)
_COUNTED_MAX = 4096
_FILTERS = ("workflow", "state", "states", "unit", "parent_id", "field", "overdue", "final")


class ReaderReads:
    """What :class:`SQLStore` does with readers; it gives ``_read``, ``_cache``, ``_p``,
    ``_sql`` and the epoch it last read (``_epoch``, ``_epoch_next``)."""

    _p: str
    _sql: Any
    _cache: RowCache
    _epoch: int | None
    _epoch_next: float
    _counted: dict[str, tuple[int, float]]
    postgres: bool

    def _read(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = (), prepare: bool = False
    ) -> list[Any]:
        raise NotImplementedError

    def readers(self, instance_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        ids = []
        if self._cache.size:
            self._check_readers_epoch()
        for iid in dict.fromkeys(instance_ids):
            known = self._cache.readers(iid) if self._cache.size else None
            if known is None:
                ids.append(iid)
            elif known:
                out[iid] = known
        if len(ids) == 1 and self._cache.size:  # one instance (a command, a get): learn them
            out.update(self._readers_learned(ids[0]))
            ids = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self._read(
                "SELECT instance_id, principal, level FROM readers WHERE instance_id IN "
                f"({', '.join([self._p] * len(chunk))})",
                chunk,
            )
            for iid, who, level in rows:
                out.setdefault(iid, {})[who] = int(level)
        return out

    def _readers_learned(self, instance_id: str) -> dict[str, dict[str, int]]:
        """One instance's readers, read with the version they belong to (one statement, one
        snapshot) and kept in the cache if its row is cached at that version: the step that
        follows keeps them for its own version, so the commands on an instance another process
        wrote read its readers once, not at every step."""
        rows = self._read(
            "SELECT i.version, r.principal, r.level FROM instances i LEFT JOIN readers r "
            f"ON r.instance_id = i.id WHERE i.id = {self._p}",
            (instance_id,),
            prepare=True,
        )
        if not rows:
            return {}
        levels = {who: int(level) for _, who, level in rows if who is not None}
        self._cache.learn_readers(instance_id, int(rows[0][0]), levels)
        return {instance_id: levels} if levels else {}

    def _check_readers_epoch(self) -> None:
        """At most once every :data:`EPOCH_SECONDS`: drop the cached readers if another process
        rewrote some in place since the last look (``cache_epochs``). The first look is taken
        before the store caches any readers (its first commit or readers read), so it only
        learns the count."""
        now = time.monotonic()
        if self._epoch is not None and now < self._epoch_next:
            return
        self._epoch_next = now + EPOCH_SECONDS
        rows = self._read(self._sql.readers_epoch)
        value = int(rows[0][0]) if rows else 0
        if self._epoch is not None and value != self._epoch:
            self._cache.drop_readers()
        self._epoch = value

    def narrow(self, query: Query) -> tuple[bool, ...] | None:
        """For a scoped query (not an inbox), whether each of its readers (sorted) reads few
        instances: counted in the readers table up to the bound, and kept a while.

        On PostgreSQL, only when every one of them does, else None: then the page is only the
        union of their walks along their reader rows, which runs on one plan made for any
        values (see :mod:`.selects`), and otherwise the planner, planning the page for its
        values, chooses from the statistics it keeps of each principal."""
        if query.readers is None or query.acts is not None:
            return None
        filtered = any(getattr(query, name) is not None for name in _FILTERS)
        bound = FEW_FILTERED if filtered else FEW
        few = tuple(self._reader_rows(p) < bound for p in sorted(query.readers))
        return None if self.postgres and not all(few) else few

    def _reader_rows(self, principal: str) -> int:
        """The reader rows of ``principal``, counted up to :data:`FEW` (one range of the index
        on principal), at most once every :data:`COUNT_SECONDS`."""
        now = time.monotonic()
        held = self._counted.get(principal)
        if held is not None and now < held[1]:
            return held[0]
        rows = self._read(
            "SELECT count(*) FROM (SELECT 1 FROM readers WHERE principal = "
            f"{self._p} LIMIT {FEW}) AS found",
            (principal,),
            prepare=True,
        )
        if len(self._counted) >= _COUNTED_MAX:
            self._counted.clear()
        count = int(rows[0][0])
        self._counted[principal] = (count, now + COUNT_SECONDS)
        return count
