"""The pending timers of a SQL store: due ones, an instance's, those a calendar change moves,
and a fired one forgotten (mixed into :class:`SQLStore`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from xieshang import TimerRecord
from xieshang.shared import iso

__all__ = ["TimerReads"]


class TimerReads:
    """What :class:`SQLStore` does with timers; it gives ``_read``, ``_write_one``, ``_p`` and
    ``_sql``."""

    _p: str
    _sql: Any

    def _read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        raise NotImplementedError

    def _write_one(self, sql: str, params: Sequence[Any]) -> None:
        raise NotImplementedError

    def due_timers(self, now: datetime, limit: int = 100) -> list[TimerRecord]:
        p = self._p
        rows = self._read(
            f'SELECT instance_id, kind, "trigger", due_at, version, org, basis FROM timers '
            f"WHERE due_at <= {p} ORDER BY due_at, id LIMIT {p}",
            (iso(now), limit),
        )
        return [_timer(r) for r in rows]

    def timers_of(self, instance_id: str) -> list[TimerRecord]:
        rows = self._read(
            f'SELECT instance_id, kind, "trigger", due_at, version, org, basis FROM timers '
            f"WHERE instance_id = {self._p} ORDER BY due_at, id",
            (instance_id,),
        )
        return [_timer(r) for r in rows]

    def calendar_dependent(self) -> list[str]:
        rows = self._read(
            "SELECT id, created_at FROM instances WHERE final = false AND due_basis IS NOT NULL "
            "UNION SELECT i.id, i.created_at FROM timers t JOIN instances i ON i.id = t.instance_id"
            " WHERE t.basis IS NOT NULL ORDER BY 2, 1"
        )
        return [str(r[0]) for r in rows]

    def delete_timer(self, timer: TimerRecord) -> None:
        t = timer
        self._write_one(
            self._sql.consume, (t.instance_id, t.kind, t.trigger, iso(t.due_at), t.version, t.org)
        )


def _timer(r: Sequence[Any]) -> TimerRecord:
    instance_id, kind, trigger, due_at, version, org, basis = r
    return TimerRecord(instance_id, kind, trigger, datetime.fromisoformat(due_at), version, org,
                       basis)  # fmt: skip
