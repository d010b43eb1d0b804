"""The ports the engine talks through: small protocols that adapters implement."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from .errors import Usage
from .ledger import LedgerEntry
from .records import Commit, EventRecord, HistoryEntry, Instance, TimerRecord

__all__ = [
    "Clock",
    "DefinitionStore",
    "FixedClock",
    "HistoryStore",
    "InstanceStore",
    "Query",
    "QueryStore",
    "Store",
    "SystemClock",
    "TimerStore",
]


class Clock(Protocol):
    """Where the engine reads time. Always timezone-aware."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that says what it is told: for tests and simulated years."""

    def __init__(self, moment: datetime) -> None:
        """Raises: Usage: ``moment`` is not a timezone-aware datetime."""
        self.moment = _aware(moment)

    def now(self) -> datetime:
        return self.moment

    def set(self, moment: datetime) -> None:
        """Raises: Usage: ``moment`` is not a timezone-aware datetime."""
        self.moment = _aware(moment)

    def advance(self, **delta: float) -> datetime:
        """Move the clock on by ``timedelta(**delta)`` (``days=1``, ``hours=2`` ...).

        Raises:
            Usage: a keyword ``timedelta`` does not take, or a value that is not a number.
        """
        try:
            step = timedelta(**delta)
            self.moment = self.moment + step
        except (TypeError, OverflowError) as e:
            raise Usage(f"cannot advance the clock by {delta!r}: {e}", "delta") from e
        return self.moment


def _aware(moment: Any) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        got = f"{moment!r} that is a {type(moment).__name__}"
        raise Usage(f"FixedClock needs a timezone-aware datetime (got {got})", "moment")
    return moment


@dataclass(frozen=True, slots=True)
class Query:
    """A filter over instances; every criterion is optional. Ordered by creation, then id."""

    workflow: str | None = None
    state: str | None = None
    org: str | None = None
    overdue: bool | None = None
    final: bool | None = None
    unit: str | None = None
    parent_id: str | None = None
    field: str | None = None
    value: Any = None
    limit: int = 100
    after: tuple[str, str] | None = None  # (created_at iso, id) of the last row seen
    readers: frozenset[str] | None = None  # only instances one of these principals may read


class InstanceStore(Protocol):
    def load(self, instance_id: str, *, fresh: bool = False) -> Instance | None:
        """The stored instance; ``fresh`` bypasses any cache."""

    def apply(self, commit: Commit) -> None:
        """Write a commit atomically: all of it or none of it.

        Raises:
            ConcurrencyConflict: a version, a timer, a command id or an instance id was taken
                first; ``case`` says which (a :class:`ConflictCase`).
            StoreError: the store refused for another reason (``StoreUnavailable``: try again).
        """


class HistoryStore(Protocol):
    def history(self, instance_id: str) -> list[HistoryEntry]: ...

    def find_command(self, command_id: str) -> HistoryEntry | None: ...

    def actors_of(self, instance_id: str, triggers: frozenset[str]) -> set[str]:
        """Ids of the actors who fired any of ``triggers`` on this instance."""


class QueryStore(Protocol):
    def query(self, query: Query) -> list[Instance]: ...

    def ledger(self, after: int = 0, limit: int | None = None) -> list[LedgerEntry]:
        """The store-wide ledger after position ``after``, in order."""

    def ledger_head(self) -> tuple[int, str]:
        """The ledger's last position and hash; (0, "") when empty."""

    def row_hashes(self) -> dict[tuple[str, int], str]:
        """Every stored history row's hash by (instance id, seq)."""

    def instance_orgs(self) -> dict[str, str]:
        """Every stored instance's org by id."""

    def instance_ids(self) -> Iterator[str]: ...

    def readers(self, instance_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """The stored reader principals and levels of each instance (absent: none stored)."""

    def outbox(self, instance_id: str | None = None) -> list[EventRecord]: ...


class TimerStore(Protocol):
    def due_timers(self, now: datetime, limit: int = 100) -> list[TimerRecord]:
        """Pending timers due at or before ``now``, earliest first."""

    def delete_timer(self, timer: TimerRecord) -> None:
        """Forget a timer that fired or went stale."""

    def timers_of(self, instance_id: str) -> list[TimerRecord]:
        """The pending timers of one instance, earliest first."""

    def calendar_dependent(self) -> list[str]:
        """Ids of the open instances whose deadline or pending timers have a calendar basis,
        oldest first: what a calendar reconcile looks at."""


class DefinitionStore(Protocol):
    def save_definition(
        self, content_hash: str, workflow: str, version: int, body: str
    ) -> None: ...

    def load_definition(self, content_hash: str) -> str | None: ...


class Store(InstanceStore, HistoryStore, QueryStore, TimerStore, DefinitionStore, Protocol):
    """All the store ports together: what the in-memory and the SQL stores provide."""
