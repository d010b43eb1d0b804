"""The ports the engine talks through: small protocols that adapters implement."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from .errors import Usage
from .ledger import LedgerEntry
from .records import Actor, Commit, EventRecord, HistoryEntry, Instance, TimerRecord, iso

__all__ = [
    "ActClause",
    "Clock",
    "DefinitionStore",
    "FixedClock",
    "HistoryStore",
    "InstanceStore",
    "PageCursor",
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


class PageCursor(str):
    """A position in the order of creation: the next page starts past this instance.

    It is the text the CLI and the HTTP API print, ``<created_at ISO>|<id>``, with its two
    parts as :attr:`created_at` and :attr:`id`. A page's ``next_cursor`` is one, and
    :class:`Query` takes it (or its text, or a ``(created_at, id)`` pair) as ``after``.
    """

    __slots__ = ()

    @property
    def created_at(self) -> str:
        return self.partition("|")[0]

    @property
    def id(self) -> str:
        return self.partition("|")[2]

    @property
    def key(self) -> tuple[str, str]:
        """``(created_at, id)``: compare it with an instance's to keyset-page."""
        return self.created_at, self.id

    @classmethod
    def of(cls, instance: Instance) -> PageCursor:
        """The position just after ``instance``."""
        return cls(f"{iso(instance.created_at)}|{instance.id}")

    @classmethod
    def parse(cls, value: Any, option: str = "cursor") -> PageCursor:
        """The cursor ``value`` names: a page's ``next_cursor``, its text, or a pair.

        Raises:
            Usage: ``value`` is none of those (``<ISO datetime>|<instance id>``); ``option``
                names where it came from.
        """
        if isinstance(value, PageCursor):
            return value
        pair = isinstance(value, tuple) and len(value) == 2
        if pair and all(isinstance(v, str) for v in value):
            created, sep, last_id = value[0], "|", value[1]
        elif isinstance(value, str):
            created, sep, last_id = value.partition("|")
        else:
            got = f"{value!r} that is a {type(value).__name__}"
            raise Usage(f"{option} must be a page's next_cursor (got {got})", option)
        try:
            datetime.fromisoformat(created)
        except ValueError:
            sep = ""
        if not sep or not last_id or "|" in last_id:
            raise Usage(
                f"{option} {value!r} is not a cursor a page gave (<ISO datetime>|<id>)", option
            )
        return cls(f"{created}|{last_id}")


@dataclass(frozen=True, slots=True)
class ActClause:
    """Where an actor may act, as a store filters instances for an inbox (the engine builds
    these from each workflow's table of state, triggers and roles; see ``xieshang.inbox``).

    An instance matches when it is pinned to ``definition_hash`` (of ``workflow``), is in one of
    ``states``, and: ``anywhere``; or ``own_unit`` and its ``unit`` is null or ``unit``; or one of
    the data ``fields`` holds ``unit`` (the field's value, or an element of its list). A clause
    with ``definition_hash`` None matches every instance not final (of ``workflow``, if given;
    in ``states``, if any) pinned to none of the ``known`` hashes: a definition the engine has
    not loaded, which the engine judges. A store may match more than a clause says, never
    less: the engine checks every instance matched.
    """

    workflow: str | None
    definition_hash: str | None
    states: tuple[str, ...] = ()
    anywhere: bool = False
    unit: str | None = None
    own_unit: bool = False
    fields: tuple[str, ...] = ()
    known: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Query:
    """A filter over instances; every criterion is optional. Ordered by creation, then id.

    ``state`` is one state, ``states`` any of several. ``after`` is the ``next_cursor`` of the
    page before (a :class:`PageCursor`, its text, or a ``(created_at, id)`` pair).
    ``actionable_by`` keeps the instances that actor may act on now (its inbox); the engine
    turns it into ``acts`` for the store, as it turns a reading actor into ``readers``.

    Raises:
        Usage: ``after`` is not a cursor, or ``states`` is not a list of state names.
    """

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
    after: PageCursor | None = None  # the last row seen; text or a pair is read as one
    states: Sequence[str] | None = None  # kept as a sorted tuple
    actionable_by: Actor | None = None
    readers: frozenset[str] | None = None  # only instances one of these principals may read
    acts: tuple[ActClause, ...] | None = None  # only instances matching one of these clauses

    def __post_init__(self) -> None:
        if self.after is not None and not isinstance(self.after, PageCursor):
            object.__setattr__(self, "after", PageCursor.parse(self.after, "after"))
        if self.states is not None:
            states: Any = self.states
            many = isinstance(states, list | tuple | set | frozenset)
            if not many or not all(isinstance(s, str) for s in states):
                got = f"{states!r} that is a {type(states).__name__}"
                raise Usage(f"states must be a list of state names (got {got})", "states")
            object.__setattr__(self, "states", tuple(sorted(set(states))))
        if self.actionable_by is not None and not isinstance(self.actionable_by, Actor):
            got = f"{self.actionable_by!r} that is a {type(self.actionable_by).__name__}"
            raise Usage(f"actionable_by must be an Actor (got {got})", "actionable_by")


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

    def query_read(self, query: Query) -> list[tuple[Instance, int]]:
        """What :meth:`query` gives, each instance with the highest level ``query.readers``
        hold on it, read with the row (0 for all when ``query.readers`` is None)."""

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

    def outbox_since(self, position: int, limit: int) -> list[tuple[int, EventRecord]]:
        """At most ``limit`` outbox events after ``position``, each with its position, in
        commit order: what a live stream reads after its watermark."""

    def outbox_head(self) -> int:
        """The outbox's last position; 0 when empty."""


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
    """All the store ports together: what the in-memory and the SQL stores provide.

    A store may also say ``local = True`` when its work waits for no network (the in-memory
    store, SQLite): the HTTP API then runs a command's step on its event loop rather than on a
    worker thread (see ``docs/http.md``, "Writes on SQLite"). A store that holds instances as
    objects and never changes one in place may offer ``load_shared(instance_id)``, its own
    object rather than a copy: the engine asks for it only to judge a step, and changes nothing
    in it (the in-memory store does; without it, ``load``)."""
