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
    return [
        DutyRecord(
            member=str(r[3]), org=str(r[4]), year=int(r[5]), category=str(r[6]),
            points=int(r[7]), rule=str(r[2]), instance_id=str(r[0]), seq=int(r[1]),
            occurred_at=str(r[8]),
        )  # fmt: skip
        for r in rows
    ]


def read_recomputes(store: SQLStore, year: int | None = None) -> list[DutyRecompute]:
    p = store._p
    clause, params = (f" WHERE year = {p}", [year]) if year is not None else ("", [])
    rows = store._read(f"SELECT {_RECOMPUTE} FROM duty_recomputes{clause} ORDER BY id", params)
    return [
        DutyRecompute(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]),
                      json.loads(r[5]), json.loads(r[6]), str(r[7]))  # fmt: skip
        for r in rows
    ]


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
