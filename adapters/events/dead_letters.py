"""The deliveries as an operator sees them: how many per sink and status, the dead letters, and
re-driving one. Mixed into :class:`.relay.Relay`, which delivers them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from xieshang import NotFound
from xieshang.adapters.sql.tables import deliveries, outbox
from xieshang.shared import iso

__all__ = ["DeadLetter", "DeliveryBook"]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A delivery the relay gave up on: which event, to which sink, and the last error."""

    event_id: str
    sink: str
    instance_id: str
    type: str
    attempts: int
    last_error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "sink": self.sink,
            "instance_id": self.instance_id,
            "type": self.type,
            "attempts": self.attempts,
            "last_error": self.last_error,
        }


class DeliveryBook:
    """Reads and re-drives the ``deliveries`` of the database behind ``engine``."""

    engine: sa.Engine

    def failed(self, limit: int = 100) -> list[DeadLetter]:
        """The dead deliveries (of any sink), oldest event first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    deliveries.c.event_id,
                    deliveries.c.sink,
                    outbox.c.instance_id,
                    outbox.c.type,
                    deliveries.c.attempts,
                    deliveries.c.last_error,
                )
                .select_from(deliveries.join(outbox, outbox.c.event_id == deliveries.c.event_id))
                .where(deliveries.c.status == "dead")
                .order_by(outbox.c.position, deliveries.c.sink)
                .limit(limit)
            ).all()
        return [DeadLetter(*r) for r in rows]

    def retry(self, event_id: str, sink: str | None = None, now: datetime | None = None) -> int:
        """Make the dead deliveries of ``event_id`` (to ``sink``, or to all) pending again.

        Returns:
            How many deliveries were re-driven (their attempts start again from zero).

        Raises:
            NotFound: the event has no dead delivery (to that sink).
        """
        where = (deliveries.c.event_id == event_id) & (deliveries.c.status == "dead")
        if sink is not None:
            where &= deliveries.c.sink == sink
        with self.engine.begin() as conn:
            count = conn.execute(
                sa.update(deliveries)
                .where(where)
                .values(
                    status="pending",
                    attempts=0,
                    next_attempt_at=iso(now or datetime.now(UTC)),
                )
            ).rowcount
        if not count:
            dead = [d.event_id for d in self.failed(20)]
            raise NotFound(
                "dead letter" if sink is None else f"dead letter to {sink!r}",
                event_id,
                allowed=dead,
            )
        return int(count)

    def counts(self) -> list[dict[str, Any]]:
        """How many deliveries each sink has in each status."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(deliveries.c.sink, deliveries.c.status, sa.func.count())
                .group_by(deliveries.c.sink, deliveries.c.status)
                .order_by(deliveries.c.sink, deliveries.c.status)
            ).all()
        return [{"sink": r[0], "status": r[1], "count": int(r[2])} for r in rows]

    def pending(self) -> int:
        """How many deliveries are pending (waiting or retrying), over all sinks."""
        with self.engine.connect() as conn:
            n = conn.execute(
                sa.select(sa.func.count())
                .select_from(deliveries)
                .where(deliveries.c.status == "pending")
            ).scalar()
        return int(n or 0)
