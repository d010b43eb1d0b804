"""The store's cache of recently written instances: an LRU of :class:`.rows.InstanceRow`.

A cached row is the row at its version (versions name contents); every write is still checked
against the version in the database, so the cache only spares reads and index upkeep. Beside a
row, the cache keeps the instance's reader principals as this process committed them or read
them, with the version they belong to: they are served only while the cached row is at that
version.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

from xieshang import Commit

from .rows import InstanceRow

__all__ = ["RowCache"]


class RowCache:
    """At most ``size`` rows, the least recently used dropped first; 0 keeps none. Thread-safe."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._rows: OrderedDict[str, InstanceRow] = OrderedDict()
        self._readers: dict[str, tuple[int, dict[str, int]]] = {}
        self._lock = threading.Lock()

    def hit(self, instance_id: str) -> InstanceRow | None:
        """The cached row, now the most recently used."""
        with self._lock:
            row = self._rows.get(instance_id)
            if row is not None:
                self._rows.move_to_end(instance_id)
        return row

    def peek(self, instance_id: str) -> InstanceRow | None:
        """The cached row, its place unchanged."""
        with self._lock:
            return self._rows.get(instance_id)

    def remember(self, row: InstanceRow) -> None:
        if not self.size:
            return
        with self._lock:
            held = self._rows.get(row.id)
            if held is not None and held.version > row.version:
                return  # a newer version was cached by another thread meanwhile
            self._rows[row.id] = row
            self._rows.move_to_end(row.id)
            if len(self._rows) > self.size:
                dropped, _ = self._rows.popitem(last=False)
                self._readers.pop(dropped, None)

    def readers(self, instance_id: str) -> dict[str, int] | None:
        """The instance's readers at the version of its cached row; None when not known."""
        with self._lock:
            row = self._rows.get(instance_id)
            held = self._readers.get(instance_id)
            if row is None or held is None or held[0] != row.version:
                return None
            return dict(held[1])

    def learn_readers(self, instance_id: str, version: int, levels: dict[str, int]) -> None:
        """Keep readers read at ``version``, if the row is cached at that version and nothing
        newer is known (a commit of another thread may have kept its own meanwhile)."""
        with self._lock:
            row = self._rows.get(instance_id)
            held = self._readers.get(instance_id)
            if row is not None and row.version == version and (held is None or held[0] < version):
                self._readers[instance_id] = (version, dict(levels))

    def committed(self, commit: Commit, rows: list[InstanceRow]) -> None:
        """Keep the committed rows. An update never writes ``children_version``, so an updated
        row keeps the count cached before (uncached, it is left to the next load); a touch adds
        one to its parent's count."""
        inserted = len(commit.inserts)
        for row in rows[:inserted]:
            self.remember(row)
        with self._lock:
            self._keep_readers(commit, rows)
            for row in rows[inserted:]:
                held = self._rows.get(row.id)
                if held is not None and held.version <= row.version:
                    kept = held.children_version
                    same = row.children_version == kept  # as it was read: the common case
                    self._rows[row.id] = row if same else row._replace(children_version=kept)
            for parent_id, seen in commit.touch:
                held = self._rows.get(parent_id)
                if held is not None:
                    if held.children_version == seen:
                        self._rows[parent_id] = held._replace(children_version=seen + 1)
                    else:
                        del self._rows[parent_id]

    def _keep_readers(self, commit: Commit, rows: list[InstanceRow]) -> None:
        """The readers each written row has now: those the commit wrote, or, for an update
        that left them alone, those known at the version it replaced."""
        expected = {new.id: version for new, version in commit.updates}
        written = {row.id for row in rows}
        for instance_id in commit.readers.keys() - written:  # readers rebuilt in place
            self._readers.pop(instance_id, None)
        for row in rows:
            if row.id in commit.readers:
                self._readers[row.id] = (row.version, dict(commit.readers[row.id]))
                continue
            held = self._readers.get(row.id)
            if held is not None and row.id in expected and held[0] == expected[row.id]:
                self._readers[row.id] = (row.version, held[1])
            else:
                self._readers.pop(row.id, None)

    def drop_readers(self) -> None:
        """Forget every instance's readers (another process rewrote some in place)."""
        with self._lock:
            self._readers.clear()

    def forget(self, instance_ids: Iterable[str]) -> None:
        with self._lock:
            for instance_id in instance_ids:
                self._rows.pop(instance_id, None)
                self._readers.pop(instance_id, None)

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()
            self._readers.clear()
