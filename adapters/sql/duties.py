"""The duty ledger in SQL: a commit's duty records written in its transaction, the records and
recomputes read back, and a year's records replaced by a recompute in one transaction."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from xieshang import Commit, DutyRecord
from xieshang.shared import DutyRecompute, canonical_json

from .errors import DRIVER_ERRORS, plain

if TYPE_CHECKING:
    from .store import SQLStore

__all__ = ["read_recomputes", "read_records", "replace_year", "write_duties"]

_COLUMNS = "instance_id, seq, rule, member, org, year, category, points, occurred_at"
_RECOMPUTE = "year, rules_hash, rules_body, actor, at, before, after, hash"


def _values(r: DutyRecord) -> tuple[Any, ...]:
    return (r.instance_id, r.seq, r.rule, r.member, r.org, r.year, r.category, r.points,
            r.occurred_at)  # fmt: skip


def _insert(p: str) -> str:
    return f"INSERT INTO duty_records ({_COLUMNS}) VALUES ({', '.join([p] * 9)})"


def write_duties(store: SQLStore, cur: Any, commit: Commit) -> None:
    """The duty records of ``commit``, inside the transaction the caller began."""
    if commit.duties:
        cur.executemany(_insert(store._p), [_values(r) for r in commit.duties])


def read_records(
    store: SQLStore,
    *,
    year: int | None = None,
    member: str | None = None,
    instance_id: str | None = None,
) -> list[DutyRecord]:
    p = store._p
    where, params = [], []
    for column, value in (("year", year), ("member", member), ("instance_id", instance_id)):
        if value is not None:
            where.append(f"{column} = {p}")
            params.append(value)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = store._read(
        f"SELECT {_COLUMNS} FROM duty_records{clause} ORDER BY occurred_at, instance_id, seq, "
        "rule, member",
        params,
    )
    return [_record(r) for r in rows]


def _record(r: Sequence[Any]) -> DutyRecord:
    instance_id, seq, rule, member, org, year, category, points, occurred_at = r
    return DutyRecord(str(member), str(org), int(year), str(category), int(points), str(rule),
                      str(instance_id), int(seq), str(occurred_at))  # fmt: skip


def read_recomputes(store: SQLStore, year: int | None = None) -> list[DutyRecompute]:
    p = store._p
    clause, params = (f" WHERE year = {p}", [year]) if year is not None else ("", [])
    rows = store._read(f"SELECT {_RECOMPUTE} FROM duty_recomputes{clause} ORDER BY id", params)
    return [_recompute(r) for r in rows]


def _recompute(r: Sequence[Any]) -> DutyRecompute:
    year, rules_hash, body, actor, at, before, after, digest = r
    return DutyRecompute(int(year), str(rules_hash), str(body), str(actor), str(at),
                         json.loads(before), json.loads(after), str(digest))  # fmt: skip


def replace_year(
    store: SQLStore, year: int, records: Sequence[DutyRecord], recompute: DutyRecompute
) -> None:
    """Delete ``year``'s records, insert ``records`` and the recompute, in one transaction."""
    with store._writer:
        conn = store._get()
        broken = True
        try:
            _replace(store, conn, year, records, recompute)
            broken = False
        except DRIVER_ERRORS as e:
            with contextlib.suppress(*DRIVER_ERRORS):
                for statement in store._undo:
                    conn.execute(statement)
            raise plain(e) from e
        finally:
            store._put(conn, broken)


def _replace(
    store: SQLStore, conn: Any, year: int, records: Sequence[DutyRecord], d: DutyRecompute
) -> None:
    p = store._p
    cur = conn.cursor()
    cur.execute(store._begin)
    cur.execute(f"DELETE FROM duty_records WHERE year = {p}", (year,))
    if records:
        cur.executemany(_insert(p), [_values(r) for r in records])
    cur.execute(
        f"INSERT INTO duty_recomputes ({_RECOMPUTE}) VALUES ({', '.join([p] * 8)})",
        (d.year, d.rules_hash, d.rules_body, d.actor, d.at, canonical_json(d.before),
         canonical_json(d.after), d.hash),
    )  # fmt: skip
    cur.execute(store._end)
