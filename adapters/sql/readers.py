"""The reader principals of instances as the SQL store serves them: from its cache while the
cached row's version holds, else from the ``readers`` table; and the count of in-place rewrites
(``cache_epochs``) that tells a process another one rewrote readers it holds."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from .cache import RowCache

__all__ = ["EPOCH_SECONDS", "ReaderReads"]

# how long cached readers may go unchecked against another process's rewrite of them in place
EPOCH_SECONDS = 1.0


class ReaderReads:
    """What :class:`SQLStore` does with readers; it gives ``_read``, ``_cache``, ``_p``,
    ``_sql`` and the epoch it last read (``_epoch``, ``_epoch_next``)."""

    _p: str
    _sql: Any
    _cache: RowCache
    _epoch: int | None
    _epoch_next: float

    def _read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
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
