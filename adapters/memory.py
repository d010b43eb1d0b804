"""The in-memory store: a real store for embedding and for fast tests of the engine alone.

It keeps the same promises as the SQL store: a commit is applied whole or not at all, versions
are checked, a command id is recorded once. It is not durable and serves one process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime

from xieshang import (
    ActClause,
    Commit,
    ConcurrencyConflict,
    ConflictCase,
    DutyRecord,
    EventRecord,
    HistoryEntry,
    Instance,
    Query,
    TimerRecord,
)
from xieshang.shared import GENESIS, DutyRecompute, LedgerEntry, append_entries, iso

__all__ = ["MemoryStore"]


class MemoryStore:
    """Instances, history, outbox and definitions in dictionaries, guarded by one lock."""

    local = True  # works in this process: nothing to wait for

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._instances: dict[str, Instance] = {}
        self._history: dict[str, list[HistoryEntry]] = {}
        self._commands: dict[str, HistoryEntry] = {}
        self._outbox: list[EventRecord] = []
        self._definitions: dict[str, str] = {}
        self._timers: list[TimerRecord] = []
        self._ledger: list[LedgerEntry] = []
        self._readers: dict[str, dict[str, int]] = {}
        self._duties: list[DutyRecord] = []
        self._recomputes: list[DutyRecompute] = []

    def fork(self) -> MemoryStore:
        """An independent copy of everything stored: what is written to either afterwards
        leaves the other as it was (a what-if, a dry run, a walk that tries every branch)."""
        with self._lock:
            other = MemoryStore()
            other._instances = {k: i.copy() for k, i in self._instances.items()}
            other._history = {k: list(rows) for k, rows in self._history.items()}
            other._commands = dict(self._commands)
            other._outbox = list(self._outbox)
            other._definitions = dict(self._definitions)
            other._timers = list(self._timers)
            other._ledger = list(self._ledger)
            other._readers = {k: dict(levels) for k, levels in self._readers.items()}
        return other

    def load(self, instance_id: str, *, fresh: bool = False) -> Instance | None:
        found = self._instances.get(instance_id)
        return found.copy() if found is not None else None

    def load_shared(self, instance_id: str) -> Instance | None:
        """The stored instance itself, not a copy, for a caller that changes nothing in it (the
        engine judging a step: what it keeps is the copy a commit stores). Nothing the store
        holds is changed in place: a commit replaces an instance whole."""
        return self._instances.get(instance_id)

    def apply(self, commit: Commit) -> None:
        with self._lock:
            for new in commit.inserts:
                if new.id in self._instances:
                    raise ConcurrencyConflict(
                        new.id, None, self._instances[new.id].version,
                        case=ConflictCase.INSTANCE_EXISTS,
                    )  # fmt: skip
            for new, expected in commit.updates:
                current = self._instances.get(new.id)
                if current is None or current.version != expected:
                    raise ConcurrencyConflict(
                        new.id, expected, current.version if current else None,
                        case=ConflictCase.ANOTHER_WRITER,
                    )  # fmt: skip
            for timer in commit.consume_timers:
                if timer not in self._timers:
                    raise ConcurrencyConflict(timer.instance_id, case=ConflictCase.TIMER_TAKEN)
            for parent_id, seen in commit.touch:
                parent = self._instances.get(parent_id)
                if parent is None or parent.children_version != seen:
                    raise ConcurrencyConflict(
                        parent_id, seen, parent.children_version if parent else None,
                        case=ConflictCase.CHILDREN_CHANGED,
                    )  # fmt: skip
            for entry in commit.history:
                if entry.command_id is not None and entry.command_id in self._commands:
                    existing = self._commands[entry.command_id]
                    raise ConcurrencyConflict(
                        existing.instance_id, None, existing.seq, case=ConflictCase.COMMAND_USED
                    )
            rows = self._history.get
            for entry in commit.reseal:
                held = rows(entry.instance_id, [])
                if len(held) < entry.seq or held[entry.seq - 1].hash != entry.hash:
                    raise ConcurrencyConflict(entry.instance_id, case=ConflictCase.ANOTHER_WRITER)
            for entry in commit.reseal:
                self._history[entry.instance_id][entry.seq - 1] = entry
            for new in commit.inserts:
                self._instances[new.id] = new.copy()
            for parent_id, _ in commit.touch:
                parent = self._instances[parent_id]
                self._instances[parent_id] = replace(
                    parent, children_version=parent.children_version + 1
                )
            for new, _ in commit.updates:
                stored = new.copy()
                stored.children_version = self._instances[new.id].children_version
                self._instances[new.id] = stored  # whole: a reader without the lock sees it so
            for entry in commit.history:
                self._history.setdefault(entry.instance_id, []).append(entry)
                if entry.command_id is not None:
                    self._commands[entry.command_id] = entry
            self._outbox.extend(commit.events)
            self._duties.extend(commit.duties)
            if commit.history:
                head = (len(self._ledger), self._ledger[-1].hash if self._ledger else GENESIS)
                self._ledger.extend(append_entries(commit, head))
            for instance_id, levels in commit.readers.items():
                self._readers[instance_id] = dict(levels)
            for timer in commit.consume_timers:
                self._timers.remove(timer)
            if commit.clear_timers:
                gone = set(commit.clear_timers)
                self._timers = [t for t in self._timers if t.instance_id not in gone]
            self._timers.extend(commit.timers)

    def history(self, instance_id: str) -> list[HistoryEntry]:
        return list(self._history.get(instance_id, ()))

    def find_command(self, command_id: str) -> HistoryEntry | None:
        return self._commands.get(command_id)

    def actors_of(self, instance_id: str, triggers: frozenset[str]) -> set[str]:
        return {
            str(e.actor["id"]) for e in self._history.get(instance_id, ()) if e.trigger in triggers
        }

    def query(self, query: Query) -> list[Instance]:
        rows = sorted(self._instances.values(), key=lambda i: (iso(i.created_at), i.id))
        out: list[Instance] = []
        for i in rows:
            if query.after is not None and (iso(i.created_at), i.id) <= query.after.key:
                continue
            if not _matches(i, query):
                continue
            if query.readers is not None and query.readers.isdisjoint(self._readers.get(i.id, ())):
                continue
            if query.acts is not None and not any(_acts(i, c) for c in query.acts):
                continue
            out.append(i.copy())
            if len(out) >= query.limit:
                break
        return out

    def query_read(self, query: Query) -> list[tuple[Instance, int]]:
        found = self.query(query)
        readers, held = query.readers or frozenset(), self._readers
        return [(i, max((held.get(i.id, {}).get(p, 0) for p in readers), default=0)) for i in found]

    def readers(self, instance_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        return {i: dict(self._readers[i]) for i in instance_ids if i in self._readers}

    def instance_ids(self) -> Iterator[str]:
        return iter(list(self._instances))

    def outbox(self, instance_id: str | None = None) -> list[EventRecord]:
        return [e for e in self._outbox if instance_id is None or e.instance_id == instance_id]

    def outbox_since(self, position: int, limit: int) -> list[tuple[int, EventRecord]]:
        start = max(position, 0)
        chunk = self._outbox[start : start + limit]
        return list(enumerate(chunk, start + 1))

    def outbox_head(self) -> int:
        return len(self._outbox)

    def due_timers(self, now: datetime, limit: int = 100) -> list[TimerRecord]:
        with self._lock:
            due = sorted((t for t in self._timers if t.due_at <= now), key=lambda t: t.due_at)
        return due[:limit]

    def restore(
        self,
        instances: list[Instance],
        history: list[HistoryEntry],
        definitions: dict[str, str],
        events: Sequence[EventRecord] = (),
    ) -> None:
        """Load records as they were stored elsewhere (an auditor's bundle), unchecked and
        without ledgering them again: verify is what checks them."""
        with self._lock:
            for i in instances:
                self._instances[i.id] = i.copy()
            for row in sorted(history, key=lambda r: (r.instance_id, r.seq)):
                self._history.setdefault(row.instance_id, []).append(row)
            self._definitions.update(definitions)
            self._outbox.extend(events)

    def ledger(self, after: int = 0, limit: int | None = None) -> list[LedgerEntry]:
        found = self._ledger[after:]
        return found[:limit] if limit is not None else list(found)

    def ledger_head(self) -> tuple[int, str]:
        with self._lock:
            return (len(self._ledger), self._ledger[-1].hash) if self._ledger else (0, GENESIS)

    def row_hashes(self) -> dict[tuple[str, int], str]:
        return {(e.instance_id, e.seq): e.hash for rows in self._history.values() for e in rows}

    def instance_orgs(self) -> dict[str, str]:
        return {i.id: i.org for i in self._instances.values()}

    def timers_of(self, instance_id: str) -> list[TimerRecord]:
        with self._lock:
            return sorted(
                (t for t in self._timers if t.instance_id == instance_id), key=lambda t: t.due_at
            )

    def calendar_dependent(self) -> list[str]:
        with self._lock:
            ids = {i.id for i in self._instances.values() if not i.final and i.due_basis}
            ids |= {t.instance_id for t in self._timers if t.basis}
            rows = [self._instances[i] for i in ids if i in self._instances]
        return [i.id for i in sorted(rows, key=lambda i: (iso(i.created_at), i.id))]

    def delete_timer(self, timer: TimerRecord) -> None:
        with self._lock:
            if timer in self._timers:
                self._timers.remove(timer)

    def save_definition(self, content_hash: str, workflow: str, version: int, body: str) -> None:
        self._definitions.setdefault(content_hash, body)

    def load_definition(self, content_hash: str) -> str | None:
        return self._definitions.get(content_hash)

    # the duty ledger (docs/duties.md)

    def duty_records(
        self,
        *,
        year: int | None = None,
        member: str | None = None,
        instance_id: str | None = None,
    ) -> list[DutyRecord]:
        """The duty records stored, filtered as asked, in the SQL store's order (the step's
        moment, instance, row, rule, member)."""
        found = [
            r
            for r in self._duties
            if (year is None or r.year == year)
            and (member is None or r.member == member)
            and (instance_id is None or r.instance_id == instance_id)
        ]
        return sorted(found, key=lambda r: (r.occurred_at, r.instance_id, r.seq, r.rule, r.member))

    def duty_recomputes(self, year: int | None = None) -> list[DutyRecompute]:
        """The recomputes run, oldest first (of ``year`` only, when given)."""
        return [r for r in self._recomputes if year is None or r.year == year]

    def replace_duties(
        self, year: int, records: Sequence[DutyRecord], recompute: DutyRecompute
    ) -> None:
        """Replace the records of ``year`` and record the recompute, at once."""
        with self._lock:
            self._duties = [r for r in self._duties if r.year != year] + list(records)
            self._recomputes.append(recompute)


def _matches(i: Instance, q: Query) -> bool:
    checks = (
        (q.workflow, i.workflow),
        (q.state, i.state),
        (q.org, i.org),
        (q.overdue, i.overdue),
        (q.final, i.final),
        (q.unit, i.unit),
        (q.parent_id, i.parent_id),
    )
    if any(want is not None and want != have for want, have in checks):
        return False
    if q.states is not None and i.state not in q.states:
        return False
    return q.field is None or i.data.get(q.field) == q.value


def _acts(i: Instance, c: ActClause) -> bool:
    """Whether ``i`` matches an inbox clause (see :class:`xieshang.ActClause`)."""
    if c.workflow is not None and i.workflow != c.workflow:
        return False
    if c.definition_hash is None:
        return (
            not i.final
            and i.definition_hash not in c.known
            and (not c.states or i.state in c.states)
        )
    if i.definition_hash != c.definition_hash or i.state not in c.states:
        return False
    if c.anywhere or (c.own_unit and i.unit in (None, c.unit)):
        return True
    return c.unit is not None and any(_holds(i.data.get(f), c.unit) for f in c.fields)


def _holds(value: object, unit: str) -> bool:
    return value == unit or (isinstance(value, list) and unit in value)
