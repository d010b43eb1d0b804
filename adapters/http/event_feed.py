"""The outbox as the live streams of one server read it: one watermark shared by every client.

A stream does not query the store itself. Every poll it asks the feed to ``refresh``. At most
one refresh per poll interval reads the store, whichever stream asks first; the others wait on
nothing and read what it read. Each refresh reads the events after the watermark, plus the
last ``lookback`` positions again, because rows of concurrent transactions can become visible
out of order (PostgreSQL). An event not seen before is appended to the feed's log with the next
feed number; a stream keeps the feed number it has read up to, so an event that became visible
late is still handed to every stream, once.

The log keeps the newest ``keep`` events. A stream that falls further behind than that (or that
resumes from an old ``Last-Event-ID``) reads from the store by position until it reaches the
log, on its own: only a stream far behind pays for being far behind.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from xieshang import EventRecord
from xieshang.ports import Store

__all__ = ["EventFeed", "FeedEntry"]


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """An event as the feed first saw it: its feed number, its outbox position, the event."""

    number: int
    position: int
    event: EventRecord


@dataclass
class EventFeed:
    """The events one server's streams share, read from ``store`` after one watermark."""

    store: Store
    poll_seconds: float = 0.25
    lookback: int = 256
    batch: int = 1000
    keep: int = 20_000
    clock: Callable[[], float] = time.monotonic
    reads: int = 0
    _log: deque[FeedEntry] = field(init=False)
    _known: deque[str] = field(init=False)
    _known_set: set[str] = field(init=False, default_factory=set)
    _watermark: int | None = field(init=False, default=None)
    _number: int = field(init=False, default=0)
    _read_at: float | None = field(init=False, default=None)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    _log_lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._log = deque(maxlen=self.keep)
        self._known = deque()

    def head(self) -> int:
        """The outbox's last position now (where a stream without ``Last-Event-ID`` starts)."""
        return self.store.outbox_head()

    def number(self) -> int:
        """The feed number of the newest event in the log (0 before any)."""
        return self._number

    def refresh(self) -> None:
        """Read the store if no stream did in the last poll interval; never two at once."""
        if not self._lock.acquire(blocking=False):
            return  # another stream is reading: it reads for everyone
        try:
            now = self.clock()
            if self._read_at is not None and now - self._read_at < self.poll_seconds:
                return
            if self._watermark is None:
                # the first read starts at the end: older events are read by the streams that
                # ask for them
                self._watermark = self.store.outbox_head()
            full = True
            while full:
                since = max(self._watermark - self.lookback, 0)
                rows = self.store.outbox_since(since, self.batch + self.lookback)
                self.reads += 1
                for position, event in rows:
                    self._see(position, event)
                full = len(rows) == self.batch + self.lookback
            self._read_at = self.clock()
        finally:
            self._lock.release()

    def _see(self, position: int, event: EventRecord) -> None:
        assert self._watermark is not None
        self._watermark = max(self._watermark, position)
        if event.id in self._known_set:
            return
        with self._log_lock:
            self._number += 1
            self._log.append(FeedEntry(self._number, position, event))
        self._known.append(event.id)
        self._known_set.add(event.id)
        while len(self._known) > self.keep + self.lookback:
            self._known_set.discard(self._known.popleft())

    def since(self, number: int) -> list[FeedEntry] | None:
        """The log's events after feed number ``number``; None when some of them have left the
        log already (the stream must read the store itself)."""
        with self._log_lock:
            log = self._log
            if not log or number >= log[-1].number:
                return []
            if number + 1 < log[0].number:
                return None
            newer: list[FeedEntry] = []
            for entry in reversed(log):  # a stream is usually near the end: walk from there
                if entry.number <= number:
                    break
                newer.append(entry)
        newer.reverse()
        return newer
