"""After-commit subscribers: callables told of each event once the step that emitted it is stored.

:meth:`Engine.subscribe` wraps the engine's store in an :class:`AnnouncingStore` the first time
it is called: its ``apply`` writes the commit through the store it wraps and, only when that
returned (the transaction committed), hands each of the commit's events to the subscribers, in
order. A refused or conflicting command commits nothing and announces nothing. A subscriber that
raises is logged and skipped: the commit stands and the other subscribers are still told.

This is in-process and at most once: a process that stops between the commit and the call
never calls it. For delivery that survives a crash, read the outbox (the relay's sinks).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import Usage
from .records import Commit, EventRecord, copy_json

__all__ = ["AnnouncingStore", "Subscriber", "Subscribers"]

log = logging.getLogger("xieshang.subscribers")

Subscriber = Callable[[dict[str, Any]], object]


@dataclass(frozen=True, slots=True, eq=False)
class _Subscription:
    fn: Subscriber
    types: frozenset[str] | None


class Subscribers:
    """The subscribers of one engine, and the announcing of a commit's events to them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: list[_Subscription] = []

    def add(self, fn: Subscriber, types: Iterable[str] | None = None) -> Callable[[], None]:
        """Tell ``fn`` of every event (of ``types``, if given); returns what unsubscribes it.

        Raises:
            Usage: ``fn`` is not callable, or ``types`` is not a list of event type names.
        """
        if not callable(fn):
            got = f"{fn!r} that is a {type(fn).__name__}"
            raise Usage(f"a subscriber must be callable (got {got})", "fn")
        wanted: frozenset[str] | None = None
        if types is not None:
            many = isinstance(types, list | tuple | set | frozenset)
            if not many or not all(isinstance(t, str) and t for t in types):
                got = f"{types!r} that is a {type(types).__name__}"
                raise Usage(
                    f"types must be a list of event types such as "
                    f"'xieshang.instance.transitioned' (got {got})",
                    "types",
                )
            wanted = frozenset(types)
        sub = _Subscription(fn, wanted)
        with self._lock:
            self._subs.append(sub)

        def unsubscribe() -> None:
            with self._lock:
                if sub in self._subs:
                    self._subs.remove(sub)

        return unsubscribe

    def announce(self, events: Sequence[EventRecord]) -> None:
        """Call each subscriber with each event it asked for (a copy of the CloudEvent)."""
        if not events:
            return
        with self._lock:
            subs = list(self._subs)
        for event in events:
            for sub in subs:
                if sub.types is not None and event.type not in sub.types:
                    continue
                try:
                    sub.fn(copy_json(event.body))
                except Exception:  # a subscriber's failure is its own: logged, never raised
                    log.exception(
                        "subscriber %r failed on event %s (%s); the step stays committed",
                        sub.fn,
                        event.id,
                        event.type,
                    )


class AnnouncingStore:
    """A store that announces each commit's events after it committed; every other attribute
    is the wrapped store's (``inner``)."""

    def __init__(self, inner: Any, subscribers: Subscribers) -> None:
        self.inner = inner
        self.subscribers = subscribers

    def apply(self, commit: Commit) -> None:
        self.inner.apply(commit)
        self.subscribers.announce(commit.events)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __enter__(self) -> AnnouncingStore:
        self.inner.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.inner.__exit__(*exc)
