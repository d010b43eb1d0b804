"""Loading many commits at once: what applying them one by one would leave, table by table.

For filling a large database with instances an engine made on another store (benchmarks, a
migration from another system replayed through an engine in memory): each commit is the
engine's own, so the rows are exactly those :meth:`SQLStore.apply` would write, hash chains and
ledger included, but in one transaction with one ``executemany`` per table instead of one
transaction per command. Only new instances may be loaded: a commit may update, touch or fire
the timers only of instances an earlier commit of the same load inserted.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from xieshang import Commit, Instance, TimerRecord, Usage
from xieshang.shared import GENESIS, append_entries, iso

from .duties import write_duties
from .errors import DRIVER_ERRORS, plain
from .rows import dump, history_values, insert_values, instance_row

if TYPE_CHECKING:
    from .store import SQLStore

__all__ = ["bulk_load"]


class _Fold:
    """The commits of a load folded into the rows they leave."""

    def __init__(self, head: tuple[int, str]) -> None:
        self.instances: dict[str, Instance] = {}
        self.history: list[list[Any]] = []
        self.events: list[tuple[Any, ...]] = []
        self.readers: dict[str, dict[str, int]] = {}
        self.timers: dict[str, list[TimerRecord]] = {}
        self.ledger: list[tuple[Any, ...]] = []
        self.duties = Commit()  # the duty records of every commit, written together
        self.head = head

    def _known(self, instance_id: str, what: str) -> Instance:
        found = self.instances.get(instance_id)
        if found is None:
            raise Usage(
                f"a bulk load writes new instances only: {what} of {instance_id!r}, which no "
                "earlier commit of this load inserted",
                "commits",
            )
        return found

    def add(self, commit: Commit) -> None:
        if commit.reseal:
            raise Usage("a bulk load does not reseal history rows (a redaction)", "commits")
        for new in commit.inserts:
            if new.id in self.instances:
                raise Usage(f"a bulk load inserts {new.id!r} twice", "commits")
            self.instances[new.id] = new.copy()
        for new, expected in commit.updates:
            held = self._known(new.id, "an update")
            if held.version != expected:
                raise Usage(
                    f"an update of {new.id!r} expects version {expected}, the load holds "
                    f"{held.version}",
                    "commits",
                )
            self.instances[new.id] = new.copy()
        for parent_id, seen in commit.touch:
            parent = self._known(parent_id, "a child's step")
            if parent.children_version != seen:
                raise Usage(f"a child's step expects {parent_id!r} unchanged", "commits")
            parent.children_version += 1
        for t in commit.consume_timers:
            pending = self.timers.get(t.instance_id, [])
            if t not in pending:
                raise Usage(f"a fired timer of {t.instance_id!r} is not pending", "commits")
            pending.remove(t)
        self.readers.update(commit.readers)
        self.duties.duties += commit.duties
        self.history += [history_values(e) for e in commit.history]
        at = commit.history[0].recorded_at if commit.history else iso(datetime.now(UTC))
        self.events += [
            (v.id, v.instance_id, v.seq, v.type, v.org, dump(v.body), at) for v in commit.events
        ]
        for instance_id in commit.clear_timers:
            self.timers.pop(instance_id, None)
        for t in commit.timers:
            self.timers.setdefault(t.instance_id, []).append(t)
        if commit.history:
            entries = append_entries(commit, self.head)
            self.ledger += [
                (e.position, e.instance_id, e.seq, e.org, e.row_hash, e.prev_hash, e.hash)
                for e in entries
            ]
            self.head = entries[-1].position, entries[-1].hash


def bulk_load(store: SQLStore, commits: Iterable[Commit]) -> int:
    """Write ``commits``, made by an engine in this order, in one transaction.

    The ledger continues from the store's last position. Nothing is cached: reads load anew.

    Returns:
        The number of history rows written.

    Raises:
        Usage: a commit names an instance this load did not insert, inserts one twice, or
            reseals history (nothing is written).
        StoreError: the database refused (an instance id or a command id already stored
            ...; nothing is written).
    """
    if store._parent is not None:
        raise Usage("a bulk load runs in its own transaction, not in a unit of work", "store")
    sql = store._sql
    conn = store._get()
    broken = False
    try:
        cur = conn.cursor()
        cur.execute(store._begin)
        try:
            found = cur.execute(sql.ledger_tail).fetchone()
            fold = _Fold((int(found[0]), str(found[1])) if found else (0, GENESIS))
            for commit in commits:
                fold.add(commit)
            rows = [insert_values(instance_row(i)) for i in fold.instances.values()]
            cur.executemany(sql.insert, rows)
            cur.executemany(sql.history_insert, fold.history)
            cur.executemany(sql.outbox_insert, fold.events)
            cur.executemany(
                sql.readers_insert,
                [(iid, who, level, iso(fold.instances[iid].created_at))
                 for iid, levels in fold.readers.items() for who, level in sorted(levels.items())],
            )  # fmt: skip
            cur.executemany(
                sql.timer_insert,
                [(t.instance_id, t.kind, t.trigger, iso(t.due_at), t.version, t.org, t.basis)
                 for pending in fold.timers.values() for t in pending],
            )  # fmt: skip
            write_duties(store, cur, fold.duties)
            cur.executemany(sql.ledger_insert, fold.ledger)
            cur.execute(store._end)
        except BaseException:
            cur.execute("ROLLBACK")
            raise
    except DRIVER_ERRORS as e:
        broken = True
        raise plain(e) from e
    finally:
        store._put(conn, broken)
    store._cache.clear()
    return len(fold.history)
