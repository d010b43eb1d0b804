"""Relay benchmark: events per second to Redis and to a local webhook, and commit-to-delivery lag.

Two measurements per sink:

* **throughput**: ``--events`` events are committed first, then one relay drains them, running
  as ``xieshang relay`` runs (``run_forever``: one connection kept across its passes); events
  per second = events / time until the sink has taken the last one.
* **lag**: a producer commits ``--rate`` events per second for ``--seconds`` while a relay runs
  (``run_forever``, ``--poll`` seconds between idle passes); lag = arrival at the destination -
  the moment the command returned. Reported as median and p99.

The webhook receiver is a threaded ``http.server`` in a child process on 127.0.0.1; Redis is
the server of ``--redis`` (default ``$XIESHANG_TEST_REDIS_URL`` or redis://127.0.0.1:56379/0).

    python bench/relay.py                       # SQLite in a temporary directory
    python bench/relay.py --db postgresql://postgres@127.0.0.1:55432/postgres
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from sink_contract import CLERK, WORKFLOW  # the tests' workflow, shared on purpose

from xieshang import Engine, Registry, SystemClock
from xieshang.adapters.events import (
    EventSettings,
    EventSink,
    RedisStreamSink,
    Relay,
    WebhookSink,
)
from xieshang.adapters.sql.store import open_store, sa_engine

SECRET = "bench-secret"


# -- the webhook receiver, in its own process so that it does not share the relay's GIL ------


def _serve(port_out: Any, arrivals: Any) -> None:
    import json as _json

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            arrivals.put((_json.loads(body)["id"], time.time()))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_out.put(server.server_address[1])
    server.serve_forever()


class _Timed:
    """Wraps a sink and notes when each event was delivered (for the Redis lag)."""

    def __init__(self, inner: EventSink, arrivals: dict[str, float]) -> None:
        self.inner = inner
        self.name = inner.name
        self.arrivals = arrivals
        if hasattr(inner, "deliver_many"):  # the relay sends a wave in one go when it can
            self.deliver_many = self._many

    def deliver(self, event: dict[str, Any]) -> None:
        self.inner.deliver(event)
        self.arrivals.setdefault(event["id"], time.time())

    def _many(self, events: list[dict[str, Any]]) -> list[Any]:
        outcomes = list(self.inner.deliver_many(events))  # type: ignore[attr-defined]
        at = time.time()
        for event, outcome in zip(events, outcomes, strict=True):
            if outcome is None:
                self.arrivals.setdefault(event["id"], at)
        return outcomes

    def close(self) -> None:
        getattr(self.inner, "close", lambda: None)()


# -- producing events -------------------------------------------------------------------------


def _engine(url: str, synchronous: str) -> Engine:
    registry = Registry.from_texts([("relaytest.yaml", WORKFLOW)])
    return Engine(open_store(url, synchronous=synchronous), registry, SystemClock())


def _produce(engine: Engine, count: int, committed: dict[str, float], rate: float = 0) -> None:
    """Commit ``count`` events (one per command): starts, then notes on those instances."""
    ids: list[str] = []
    started = time.monotonic()
    for n in range(count):
        if rate:
            time.sleep(max(0.0, started + n / rate - time.monotonic()))
        if n % 10 == 0:
            iid = engine.start("relaytest", {"title": f"议题 {n}"}, CLERK).id
            ids.append(iid)
            committed[f"{iid}-1-0"] = time.time()
        else:
            iid = ids[-1]
            inst = engine.fire(iid, "note", CLERK, {"note": f"第{n}次意见"})
            committed[f"{iid}-{inst.version}-0"] = time.time()


_created: list[tuple[str, str]] = []  # (server URL, database) made by this run


def _drop_created() -> None:
    import psycopg

    for server, name in _created:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _fresh_db(base: str | None) -> str:
    if base is None:
        return f"sqlite:///{tempfile.mkdtemp(prefix='xs-bench-')}/bench.db"
    import psycopg
    import sqlalchemy as sa

    name = f"xs_bench_{uuid.uuid4().hex[:8]}"
    plain = base.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    _created.append((plain, name))
    return sa.make_url(plain).set(database=name).render_as_string(hide_password=False)


# -- measuring --------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _run(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    webhook_arrivals: Any = None
    receiver: mp.Process | None = None
    if kind == "webhook":
        ctx = mp.get_context("spawn")
        port_q, webhook_arrivals = ctx.Queue(), ctx.Queue()
        receiver = ctx.Process(target=_serve, args=(port_q, webhook_arrivals), daemon=True)
        receiver.start()
        url = f"http://127.0.0.1:{port_q.get(timeout=30)}/hook"

    def make_sink(arrivals: dict[str, float]) -> EventSink:
        if kind == "redis":
            prefix = f"xs-bench-{uuid.uuid4().hex[:6]}"
            return _Timed(RedisStreamSink(args.redis, prefix=prefix), arrivals)
        return WebhookSink(url, SECRET, timeout=10)

    settings = EventSettings(batch_size=args.batch, poll_interval=args.poll)
    out: dict[str, Any] = {"sink": kind}

    # throughput: drain a backlog, as `xieshang relay` does (run_forever: one connection kept
    # across its passes), until the sink has taken every event
    db = _fresh_db(args.db)
    engine = _engine(db, args.synchronous)
    _produce(engine, args.events, {})
    drained: dict[str, float] = {}
    sink = make_sink(drained)
    if not isinstance(sink, _Timed):
        sink = _Timed(sink, drained)
    relay = Relay(sa_engine(db, synchronous=args.synchronous), [sink], settings)
    stop = threading.Event()
    worker = threading.Thread(target=relay.run_forever, args=(stop, args.poll), daemon=True)
    started = time.perf_counter()
    worker.start()
    while len(drained) < args.events:
        if time.perf_counter() - started > 600:
            raise SystemExit(f"the relay delivered {len(drained)} of {args.events} in 600 s")
        time.sleep(0.002)
    elapsed = time.perf_counter() - started
    stop.set()
    worker.join(30)
    delivered = len(drained)
    out["events"] = delivered
    out["events_per_s"] = delivered / elapsed
    relay.close()
    if webhook_arrivals is not None:
        for _ in range(delivered):
            webhook_arrivals.get(timeout=30)

    # lag: a steady producer while the relay runs
    db = _fresh_db(args.db)
    engine = _engine(db, args.synchronous)
    arrivals: dict[str, float] = {}
    committed: dict[str, float] = {}
    relay = Relay(sa_engine(db, synchronous=args.synchronous), [make_sink(arrivals)], settings)
    stop = threading.Event()
    worker = threading.Thread(target=relay.run_forever, args=(stop, args.poll), daemon=True)
    worker.start()
    total = int(args.rate * args.seconds)
    _produce(engine, total, committed, rate=args.rate)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if webhook_arrivals is not None:
            while not webhook_arrivals.empty():
                event_id, at = webhook_arrivals.get()
                arrivals.setdefault(event_id, at)
        if len(arrivals) >= total:
            break
        time.sleep(0.02)
    stop.set()
    worker.join(30)
    relay.close()
    lags = [(arrivals[i] - committed[i]) * 1000 for i in committed if i in arrivals]
    out.update(
        lag_events=len(lags),
        rate=args.rate,
        lag_median_ms=statistics.median(lags),
        lag_p99_ms=_percentile(lags, 0.99),
    )
    if receiver is not None:
        receiver.terminate()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="a PostgreSQL server URL; default: a new SQLite file")
    parser.add_argument(
        "--redis", default=os.environ.get("XIESHANG_TEST_REDIS_URL", "redis://127.0.0.1:56379/0")
    )
    parser.add_argument("--sinks", default="redis,webhook")
    parser.add_argument("--events", type=int, default=5000, help="backlog for throughput")
    parser.add_argument("--rate", type=float, default=100.0, help="commits/s for the lag run")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--poll", type=float, default=0.05, help="idle poll interval, s")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--synchronous", default="NORMAL", choices=["FULL", "NORMAL"])
    parser.add_argument("--quick", action="store_true", help="1,000 events, 3 s of lag")
    args = parser.parse_args()
    if args.quick:
        args.events, args.seconds = 1000, 3.0
    redis.Redis.from_url(args.redis).ping()
    print(
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M} db={'sqlite' if args.db is None else 'postgresql'}"
        f" synchronous={args.synchronous} poll={args.poll}s batch={args.batch}"
    )
    try:
        results = [_run(kind, args) for kind in args.sinks.split(",")]
    finally:
        _drop_created()
    for r in results:
        kind = r["sink"]
        print(
            f"{kind:8} throughput {r['events_per_s']:8.0f} events/s ({r['events']} events)  "
            f"lag at {r['rate']:.0f}/s: median {r['lag_median_ms']:.1f} ms, "
            f"p99 {r['lag_p99_ms']:.1f} ms ({r['lag_events']} events)"
        )
    print(
        "RESULT "
        + " ".join(
            f"{r['sink']}_events_per_s={r['events_per_s']:.0f} "
            f"{r['sink']}_lag_p99_ms={r['lag_p99_ms']:.1f}"
            for r in results
        )
    )


if __name__ == "__main__":
    main()
