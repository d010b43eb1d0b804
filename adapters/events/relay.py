"""The outbox relay: delivers committed events to every sink, at least once, in order per instance.

For each sink, every outbox row gets a ``deliveries`` row (``pending``) the first time the
relay sees it. A pass then walks the pending rows in ``position`` (commit) order and delivers
the first pending event of each instance; once it is delivered the instance's next one may go
in the same pass. An instance whose first pending event is failing, waiting for its retry or
held by another relay is skipped until the next pass, so a sink never receives an instance's
events out of order. A failed attempt is retried after ``min(cap, base * 2**(n-1))`` seconds
(between half and all of it: jitter); after ``max_attempts`` attempts, or at once for a failure
the sink calls final, the delivery is ``dead``. A dead delivery no longer holds back the events
after it; ``retry`` makes it pending again (it is then delivered after them).

Concurrency: on PostgreSQL each delivery is claimed with ``SELECT ... FOR UPDATE SKIP LOCKED``
and the row stays locked until its outcome is recorded, so several relays never deliver the
same event to the same sink at once. On SQLite a single relay per database is assumed (the
rows are not locked while a sink works, to keep SQLite's one write lock free for commands).

Registering costs what is new, not the whole outbox: a pass gives delivery rows to the outbox
rows after the highest position the previous pass saw, less :data:`REGISTER_WINDOW` positions
(on PostgreSQL a transaction can commit an event after one with a higher position, while it
was still open), and every :data:`SWEEP_SECONDS` (and at a relay's first pass) to every outbox
row still without one.

Outcomes are recorded ``commit_every`` deliveries per transaction. A crash between a delivery
and its record delivers the event again after a restart (with ``commit_every`` > 1, the other
unrecorded ones of its chunk too), with the same id: receivers de-duplicate by the CloudEvent
``id``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from xieshang import Usage
from xieshang.adapters.sql import engine_for
from xieshang.adapters.sql.rows import dump, parse
from xieshang.adapters.sql.tables import deliveries, outbox
from xieshang.shared import iso

from .dead_letters import DeliveryBook
from .settings import EventSettings
from .sinks import DeliveryFailed, EventSink

__all__ = ["Relay"]

log = logging.getLogger("xieshang.relay")

ENV_FAULT = "XIESHANG_FAULT"  # test hook: ``after_deliver[:N]`` kills the relay (SIGKILL)

_MAX_ERROR = 2000
REGISTER_WINDOW = 5000  # positions before the last seen that each pass registers again
SWEEP_SECONDS = 30.0  # how often a pass registers the whole outbox
# the fields that record a delivery's outcome (and find its row), with their PostgreSQL types
_RECORDED = (
    ("event_id", "text"), ("sink", "text"), ("status", "text"), ("attempts", "integer"),
    ("next_attempt_at", "text"), ("last_error", "text"), ("delivered_at", "text"),
)  # fmt: skip


def _layered(rows: Sequence[Any]) -> list[Any]:
    """The rows reordered so that the first pending event of every instance comes first, then
    the second of each, and so on: each instance's events stay in their order, and a chunk
    holds as many instances as it can (for a sink that takes several events in one go)."""
    seen: dict[str, int] = {}
    keyed = []
    for k, row in enumerate(rows):
        depth = seen[row.instance_id] = seen.get(row.instance_id, -1) + 1
        keyed.append((depth, k, row))
    return [row for _, _, row in sorted(keyed, key=lambda x: (x[0], x[1]))]


def _fault_hook() -> Callable[[], None] | None:
    spec = os.environ.get(ENV_FAULT, "")
    point, _, nth = spec.partition(":")
    if point != "after_deliver":
        return None
    left = [int(nth or 1)]

    def hook() -> None:
        left[0] -= 1
        if left[0] == 0:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


class Relay(DeliveryBook):
    """Delivers the outbox of one database to ``sinks``.

    Args:
        engine_or_url: a SQLAlchemy engine, a database URL (``sqlite:///PATH``,
            ``postgresql://...``) or a store that has a ``url``.
        sinks: where to deliver; each sink's ``name`` keys its deliveries.
        settings: the retry policy and batch size; ``EventSettings()`` (the environment) if None.
        rng: the jitter's random source, for tests.
    """

    def __init__(
        self,
        engine_or_url: Any,
        sinks: Sequence[EventSink],
        settings: EventSettings | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        names = [s.name for s in sinks]
        if len(set(names)) != len(names):
            raise Usage(f"two sinks have the same name: {names}", "sinks", sinks=names)
        self.engine, self._owns_engine = engine_for(engine_or_url)
        self.sinks = list(sinks)
        self.settings = settings or EventSettings()
        self._rng = rng or random.Random()
        self._locking = self.engine.dialect.name == "postgresql"
        self._fault = _fault_hook()
        self._stop = threading.Event()  # set by run_forever's caller to end a pass early
        self._prepare()

    def _prepare(self) -> None:
        """Build the statements once; each run only binds values (and hits the compile cache)."""
        d, o = deliveries.c, outbox.c
        key = (d.event_id == sa.bindparam("b_event_id")) & (d.sink == sa.bindparam("b_sink"))
        sink = sa.bindparam("b_sink", type_=sa.Text)
        missing = sa.select(
            o.event_id,
            sa.cast(sink, sa.Text),  # PostgreSQL cannot infer the type of a bare parameter
            sa.literal("pending"),
            sa.literal(0),
            sa.cast(sa.bindparam("b_now", type_=sa.Text), sa.Text),
            o.position,
        ).where(
            ~sa.exists().where(d.event_id == o.event_id, d.sink == sink),
            o.position > sa.bindparam("b_after", type_=sa.Integer),
        )
        insert = (pg_dialect.insert if self._locking else sqlite_dialect.insert)(deliveries)
        self._sql_register = insert.from_select(
            ["event_id", "sink", "status", "attempts", "next_attempt_at", "position"], missing
        ).on_conflict_do_nothing()
        self._sql_top = sa.select(sa.func.coalesce(sa.func.max(o.position), 0))
        self._seen = 0  # the highest outbox position the last registration saw
        self._sweep_at = 0.0  # when the next pass registers the whole outbox (time.monotonic)
        self._sql_pending = (
            sa.select(d.event_id, d.attempts, d.next_attempt_at, o.instance_id, o.body)
            .select_from(deliveries.join(outbox, o.position == d.position))
            .where(d.sink == sa.bindparam("b_sink"), d.status == "pending")
            .order_by(d.position)
            .limit(sa.bindparam("b_limit"))
        )
        self._sql_claim = (
            sa.select(d.event_id, d.attempts)
            .where(
                d.sink == sa.bindparam("b_sink"),
                # PostgreSQL only: one array, not a text of as many values as the chunk has
                d.event_id == sa.any_(sa.cast(sa.bindparam("b_ids"), pg_dialect.ARRAY(sa.Text))),
                d.status == "pending",
                d.next_attempt_at <= sa.bindparam("b_now"),
            )
            .with_for_update(skip_locked=True)
        )
        self._sql_record = (
            sa.update(deliveries)
            .where(key, d.status == "pending")
            .values(
                status=sa.bindparam("b_status"),
                attempts=sa.bindparam("b_attempts"),
                next_attempt_at=sa.bindparam("b_next_attempt_at"),
                last_error=sa.bindparam("b_last_error"),
                delivered_at=sa.bindparam("b_delivered_at"),
            )
        )
        # PostgreSQL: a chunk's outcomes in one statement, its rows one JSON text (one value
        # to send, read by the server); one update a delivery is planned by the server each
        # time, and a plan made before the table had statistics walks every pending row
        # (about 1 ms an update)
        self._sql_record_all = sa.text(
            "UPDATE deliveries AS d SET status = v.status, attempts = v.attempts, "
            "next_attempt_at = v.next_attempt_at, last_error = v.last_error, "
            "delivered_at = v.delivered_at FROM json_to_recordset(CAST(:b_rows AS json)) AS v("
            + ", ".join(f"{name} {kind}" for name, kind in _RECORDED)
            + ") WHERE d.event_id = v.event_id AND d.sink = v.sink AND d.status = 'pending'"
        )

    # -- delivering ---------------------------------------------------------------------------

    def run_once(self, now: datetime | None = None) -> int:
        """One pass over the outbox for every sink. Returns how many deliveries succeeded.

        Args:
            now: the moment retries are scheduled from and compared with (aware); now by default.
        """
        with self.engine.connect() as conn:
            return self._run(conn, now)

    def _run(self, conn: sa.Connection, now: datetime | None) -> int:
        now = now or datetime.now(UTC)
        self._register(conn, now)
        delivered = 0
        for sink in self.sinks:
            if self._stop.is_set():
                break
            delivered += self._pass(conn, sink, now)
        return delivered

    def run_forever(self, stop_event: threading.Event, poll_interval: float | None = None) -> None:
        """Deliver until ``stop_event`` is set; sleeps ``poll_interval`` s when idle.

        Once ``stop_event`` is set, the chunk in hand is finished and recorded, then it returns.
        One connection is kept across passes. A pass that fails (the database is unreachable)
        is logged and tried again, on a new connection, after the interval.
        """
        interval = self.settings.poll_interval if poll_interval is None else poll_interval
        self._stop = stop_event
        conn: sa.Connection | None = None
        try:
            while not stop_event.is_set():
                try:
                    if conn is None:
                        conn = self.engine.connect()
                    busy = self._run(conn, None) > 0
                except sa.exc.SQLAlchemyError as e:
                    log.warning("relay pass failed: %s", e)
                    if conn is not None:
                        with contextlib.suppress(sa.exc.SQLAlchemyError):
                            conn.close()
                    conn = None
                    busy = False
                if not busy:
                    stop_event.wait(interval)
        finally:
            if conn is not None:
                conn.close()

    def _register(self, conn: sa.Connection, now: datetime) -> None:
        """Give every outbox row without one a pending delivery row per sink: those after
        the window before the last position seen, or, when a sweep is due, all."""
        sweep = time.monotonic() >= self._sweep_at
        after = 0 if sweep else max(self._seen - REGISTER_WINDOW, 0)
        with conn.begin():
            for sink in self.sinks:
                conn.execute(
                    self._sql_register, {"b_sink": sink.name, "b_now": iso(now), "b_after": after}
                )
            # read after the writes (on SQLite, one snapshot with them): a row at or below it
            # that was not registered yet commits later, and falls in the next pass's window
            self._seen = int(conn.execute(self._sql_top).scalar_one())
        if sweep:
            self._sweep_at = time.monotonic() + SWEEP_SECONDS

    def _pass(self, conn: sa.Connection, sink: EventSink, now: datetime) -> int:
        at = iso(now)
        with conn.begin():
            rows = conn.execute(
                self._sql_pending, {"b_sink": sink.name, "b_limit": self.settings.batch_size}
            ).all()
        if hasattr(sink, "deliver_many"):
            rows = _layered(rows)
        held: set[str] = set()  # instances whose earlier event is not delivered yet
        delivered = 0
        chunk: list[Any] = []
        for row in rows:
            if row.instance_id in held:
                continue
            if row.next_attempt_at is not None and row.next_attempt_at > at:
                held.add(row.instance_id)
                continue
            chunk.append(row)
            if len(chunk) >= self.settings.commit_every:
                delivered += self._chunk(conn, sink, chunk, held, now)
                chunk = []
                if self._stop.is_set():
                    return delivered  # shutting down: the rest waits for the next relay
        if chunk:
            delivered += self._chunk(conn, sink, chunk, held, now)
        return delivered

    def _chunk(
        self, conn: sa.Connection, sink: EventSink, rows: list[Any], held: set[str], now: datetime
    ) -> int:
        """Claim, deliver and record some deliveries (in order); returns how many succeeded.

        On PostgreSQL the rows are locked (skipping rows another relay holds) from the claim
        until their outcomes are committed. On SQLite (one relay) nothing is held while the sink
        works; the record's ``status = 'pending'`` condition is the only check. A crash before
        the commit delivers the chunk's events again.
        """
        trans = conn.begin()
        try:
            if self._locking:
                claim = {
                    "b_sink": sink.name,
                    "b_ids": [r.event_id for r in rows],
                    "b_now": iso(now),
                }
                claimed = {r[0]: r[1] for r in conn.execute(self._sql_claim, claim)}
            else:
                trans.commit()
                claimed = {r.event_id: r.attempts for r in rows}
            records: list[dict[str, Any]] = []
            delivered = 0
            # one event at a time, in commit order; to a sink that takes several in one go,
            # the k-th event of each instance in the chunk together (order kept per instance).
            # An instance whose event failed sends none of its later ones.
            layers: list[list[Any]] = []
            depth: dict[str, int] = {}
            together = hasattr(sink, "deliver_many")
            for row in rows:
                if row.instance_id in held:
                    continue
                if row.event_id not in claimed:  # another relay has it, or it changed
                    held.add(row.instance_id)
                    continue
                if not together:
                    layers.append([row])
                    continue
                k = depth[row.instance_id] = depth.get(row.instance_id, -1) + 1
                if k == len(layers):
                    layers.append([])
                layers[k].append(row)
            for layer in layers:
                wave = [row for row in layer if row.instance_id not in held]
                if not wave:
                    continue
                results = self._deliver_all(sink, [row.body for row in wave])
                arrived = iso(datetime.now(UTC))  # the wave's reply came back
                for row, error in zip(wave, results, strict=True):
                    attempts = claimed[row.event_id] + 1
                    outcome, values = self._outcome(error, attempts, now, arrived)
                    records.append({"event_id": row.event_id, "sink": sink.name, **values})
                    if outcome == "delivered":
                        delivered += 1
                    elif outcome == "retry":
                        held.add(row.instance_id)
                    else:
                        log.warning(
                            "dead letter %s -> %s after %d attempts: %s",
                            row.event_id,
                            sink.name,
                            values["attempts"],
                            values["last_error"],
                        )
            if not trans.is_active:
                trans = conn.begin()
            if records and self._locking:
                conn.execute(self._sql_record_all, {"b_rows": dump(records)})
            elif records:
                named = [{f"b_{k}": v for k, v in r.items()} for r in records]
                conn.execute(self._sql_record, named)
            trans.commit()
        except BaseException:
            if trans.is_active:
                trans.rollback()
            raise
        return delivered

    @staticmethod
    def _deliver(sink: EventSink, body: str) -> DeliveryFailed | None:
        try:
            sink.deliver(parse(body))
        except DeliveryFailed as e:
            return e
        except Exception as e:  # a broken sink is a failed, retried delivery
            return DeliveryFailed(True, f"{sink.name}: {type(e).__name__}: {e}")
        return None

    def _deliver_all(self, sink: EventSink, bodies: list[str]) -> list[DeliveryFailed | None]:
        """The outcome of each event, in order: in one go when the sink can, else one by one.
        The fault hook runs after each delivered event."""
        many = getattr(sink, "deliver_many", None)
        results: list[DeliveryFailed | None] = []
        if many is None or len(bodies) == 1:
            for body in bodies:
                results.append(self._deliver(sink, body))
                if results[-1] is None and self._fault is not None:
                    self._fault()
            return results
        try:
            results = list(many([parse(body) for body in bodies]))
        except Exception as e:  # a broken sink fails the whole wave, to be retried
            results = [DeliveryFailed(True, f"{sink.name}: {type(e).__name__}: {e}")] * len(bodies)
        if len(results) != len(bodies):
            reason = f"{sink.name}: deliver_many gave {len(results)} outcomes for {len(bodies)}"
            results = [DeliveryFailed(True, reason)] * len(bodies)
        for outcome in results:
            if outcome is None and self._fault is not None:
                self._fault()
        return results

    def _outcome(
        self, error: DeliveryFailed | None, attempts: int, now: datetime, arrived: str
    ) -> tuple[str, dict[str, Any]]:
        """The outcome of an attempt and the columns that record it."""
        values: dict[str, Any] = {
            "status": "pending",
            "attempts": attempts,
            "next_attempt_at": None,
            "last_error": None,
            "delivered_at": None,
        }
        if error is None:
            return "delivered", {
                **values,
                "status": "delivered",
                "delivered_at": arrived,
            }
        values["last_error"] = error.reason[:_MAX_ERROR]
        if not error.retryable or attempts >= self.settings.max_attempts:
            return "dead", {**values, "status": "dead"}
        wait = self.backoff(attempts, error.retry_after)
        return "retry", {**values, "next_attempt_at": iso(now + timedelta(seconds=wait))}

    def backoff(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (jittered, capped)."""
        s = self.settings
        full = min(s.retry_cap, s.retry_base * 2 ** min(attempts - 1, 62))
        wait: float = full / 2 + self._rng.uniform(0, full / 2)
        if retry_after is not None:
            wait = max(wait, min(retry_after, s.retry_cap))
        return wait

    def close(self) -> None:
        """Close the sinks, and the engine if the relay made it."""
        for sink in self.sinks:
            close = getattr(sink, "close", None)
            if callable(close):
                close()
        if self._owns_engine:
            self.engine.dispose()
