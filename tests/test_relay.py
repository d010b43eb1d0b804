"""The relay on real SQLite and PostgreSQL: every committed event, in order, at least once."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import typer
from sink_contract import CLERK, SECRET, Receiver, drive, fresh_pg_database, make_engine
from typer.testing import CliRunner

from xieshang import Engine
from xieshang.adapters.events import (
    DeliveryFailed,
    EventSettings,
    JsonLinesSink,
    Relay,
    SubscriberSink,
    WebhookSink,
    register_cli,
    verify,
)
from xieshang.adapters.events.relay import deliveries
from xieshang.adapters.sql.store import SQLStore, open_store
from xieshang.errors import NotFound, XieshangError
from xieshang.records import Commit, EventRecord

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new database on the test PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'events.db'}"
    else:
        with fresh_pg_database() as url:
            yield url


@pytest.fixture
def store(db_url: str) -> Iterator[SQLStore]:
    s = open_store(db_url)
    yield s
    s.close()


@pytest.fixture
def engine(store: SQLStore) -> Engine:
    return make_engine(store)


def settings(**overrides: Any) -> EventSettings:
    values: dict[str, Any] = {"retry_base": 1.0, "retry_cap": 60.0, "max_attempts": 5}
    return EventSettings(**{**values, **overrides})


def outbox_ids(engine: Engine) -> list[str]:
    return [e.id for e in engine.store.outbox()]


def drain(relay: Relay, start: datetime = T0, passes: int = 50) -> int:
    """Run passes, each an hour after the last (past any retry wait), until nothing is pending."""
    now, total = start, 0
    for _ in range(passes):
        total += relay.run_once(now)
        if relay.pending() == 0:
            return total
        now += timedelta(hours=1)
    raise AssertionError(f"still {relay.pending()} pending after {passes} passes")


def delivery_rows(relay: Relay, sink: str) -> dict[str, Any]:
    with relay.engine.connect() as conn:
        rows = conn.execute(sa.select(deliveries).where(deliveries.c.sink == sink)).mappings()
        return {r["event_id"]: dict(r) for r in rows}


class Flaky:
    """A subscriber callback that fails for chosen event ids, a given number of times each."""

    def __init__(self, fail: dict[str, int] | None = None, *, final: bool = False) -> None:
        self.fail = dict(fail or {})
        self.final = final
        self.calls: list[str] = []
        self.got: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> None:
        self.calls.append(event["id"])
        if self.fail.get(event["id"], 0) > 0:
            self.fail[event["id"]] -= 1
            if self.final:
                raise DeliveryFailed(False, f"refused {event['id']}")
            raise RuntimeError(f"cannot take {event['id']} now")
        self.got.append(event)


def by_instance(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for e in events:
        out[e["subject"]].append(e["id"])
    return out


# -- delivery ---------------------------------------------------------------------------------


def test_every_committed_event_reaches_every_sink_once_in_commit_order(
    engine: Engine, store: SQLStore, tmp_path: Path
) -> None:
    """Each sink receives every outbox event once, in commit order; a second pass sends nothing."""
    drive(engine, instances=3, notes=2)
    a, b = Flaky(), Flaky()
    jsonl = JsonLinesSink(tmp_path / "events.jsonl")
    relay = Relay(store, [SubscriberSink("a", a), SubscriberSink("b", b), jsonl], settings())
    expected = outbox_ids(engine)
    assert relay.run_once(T0) == 3 * len(expected)
    assert relay.run_once(T0) == 0
    lines = [json.loads(x)["id"] for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["id"] for e in a.got] == [e["id"] for e in b.got] == lines == expected
    assert all(
        r["status"] == "delivered" and r["attempts"] == 1
        for r in delivery_rows(relay, "sub:a").values()
    )
    relay.close()


def test_events_committed_after_a_pass_are_delivered_by_the_next(
    engine: Engine, store: SQLStore
) -> None:
    """A pass delivers what was committed before it; the next pass picks up the rest."""
    ids = drive(engine, instances=1, notes=1, close=False)
    sub = Flaky()
    relay = Relay(store, [SubscriberSink("s", sub)], settings())
    relay.run_once(T0)
    engine.fire(ids[0], "close", CLERK)
    relay.run_once(T0)
    assert [e["id"] for e in sub.got] == outbox_ids(engine)


def test_a_pass_registers_the_window_after_the_last_position_seen_and_a_sweep_all(
    engine: Engine, store: SQLStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass gives delivery rows only to the outbox rows after the window before the last
    position it saw: an older row without one (as an event whose transaction committed late)
    waits for the sweep, which registers the whole outbox; then it is delivered."""
    import xieshang.adapters.events.relay as relay_module

    monkeypatch.setattr(relay_module, "REGISTER_WINDOW", 0)
    ids = drive(engine, instances=1, notes=1, close=False)
    sub = Flaky()
    relay = Relay(store, [SubscriberSink("s", sub)], settings())
    relay.run_once(T0)  # the first pass sweeps
    first = outbox_ids(engine)
    assert [e["id"] for e in sub.got] == first
    with relay.engine.begin() as conn:  # the oldest event loses its delivery row
        conn.execute(sa.delete(deliveries).where(deliveries.c.event_id == first[0]))
    engine.fire(ids[0], "close", CLERK)
    relay.run_once(T0)
    later = [e for e in outbox_ids(engine) if e not in first]
    assert [e["id"] for e in sub.got] == first + later  # the new ones, not the lost one
    assert first[0] not in delivery_rows(relay, "sub:s")
    relay._sweep_at = 0.0  # the sweep is due
    relay.run_once(T0)
    assert [e["id"] for e in sub.got] == first + later + [first[0]]
    relay.close()


def test_http_receiver_failing_first_deliveries_gets_every_event_signed_in_order(
    engine: Engine, store: SQLStore
) -> None:
    """A flaky receiver gets every event, signed, in order per instance, repeats with one id."""
    drive(engine, instances=4, notes=3)
    receiver = Receiver(status=lambda n, body: 503 if n < 5 or n % 7 == 3 else 200)
    sink = WebhookSink(receiver.url, SECRET, timeout=5)
    relay = Relay(store, [sink], settings())
    try:
        drain(relay)
    finally:
        relay.close()
        receiver.close()
    committed = [e.body for e in engine.store.outbox()]
    accepted = receiver.accepted()
    assert sorted(e["id"] for e in accepted) == sorted(e["id"] for e in committed)
    assert by_instance(accepted) == by_instance(committed)
    bodies: dict[str, set[bytes]] = defaultdict(set)
    for headers, body, _ in receiver.requests:
        assert verify(SECRET, headers["X-Xieshang-Signature"], body)
        bodies[json.loads(body)["id"]].add(body)
    assert all(len(v) == 1 for v in bodies.values())  # a repeat is the same event, same id
    assert any(code == 503 for _, _, code in receiver.requests)


# -- failures, order, retries -----------------------------------------------------------------


def test_failing_subscriber_never_breaks_the_command_and_is_recorded_as_failed(
    engine: Engine, store: SQLStore
) -> None:
    """Commands succeed while a subscriber fails; the failure is recorded, the others delivered."""
    bad_calls: list[str] = []

    def bad(event: dict[str, Any]) -> None:
        bad_calls.append(event["id"])
        raise RuntimeError(f"cannot take {event['id']} now")

    good = Flaky()
    relay = Relay(store, [SubscriberSink("bad", bad), SubscriberSink("good", good)], settings())
    stop = threading.Event()
    worker = threading.Thread(target=relay.run_forever, args=(stop, 0.01))
    worker.start()
    try:
        ids = drive(engine, instances=2, notes=2)
        deadline = time.monotonic() + 20
        while len(good.got) < len(outbox_ids(engine)) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        worker.join(10)
    assert all(engine.get(i).state == "closed" for i in ids)
    assert [e["id"] for e in good.got] == outbox_ids(engine)
    rows = delivery_rows(relay, "sub:bad")
    failing = [r for r in rows.values() if r["attempts"] >= 1]
    assert failing and all(
        r["status"] == "pending" and "cannot take" in r["last_error"] for r in failing
    )
    assert bad_calls


def test_failed_event_holds_back_later_events_of_its_instance_only(
    engine: Engine, store: SQLStore
) -> None:
    """While an instance's event fails, its later events wait; other instances go on."""
    first, second = drive(engine, instances=2, notes=2)
    stuck = [e.id for e in engine.store.outbox(first)][1]
    sub = Flaky({stuck: 2})
    relay = Relay(store, [SubscriberSink("s", sub)], settings())
    relay.run_once(T0)
    got = by_instance(sub.got)
    assert got[first] == [e.id for e in engine.store.outbox(first)][:1]
    assert got[second] == [e.id for e in engine.store.outbox(second)]
    drain(relay, T0 + timedelta(hours=1))
    assert by_instance(sub.got)[first] == [e.id for e in engine.store.outbox(first)]
    assert sub.calls.count(stuck) == 3


class FlakyBatch(Flaky):
    """A sink that takes several events in one go, failing chosen ids (retryable)."""

    name = "batch"

    def __init__(self, fail: dict[str, int] | None = None) -> None:
        super().__init__(fail)
        self.waves: list[list[str]] = []

    def deliver(self, event: dict[str, Any]) -> None:
        self(event)

    def deliver_many(self, events: list[dict[str, Any]]) -> list[DeliveryFailed | None]:
        self.waves.append([e["id"] for e in events])
        out: list[DeliveryFailed | None] = []
        for e in events:
            try:
                self(e)
                out.append(None)
            except RuntimeError as error:
                out.append(DeliveryFailed(True, str(error)))
        return out


def test_a_sink_taking_events_in_one_go_gets_one_event_per_instance_at_a_time(
    engine: Engine, store: SQLStore
) -> None:
    """A wave holds at most one event of an instance; a failed one holds its instance's later
    events back until it is delivered, and the other instances' events still go."""
    first, second = drive(engine, instances=2, notes=2)
    stuck = [e.id for e in engine.store.outbox(first)][1]
    sink = FlakyBatch({stuck: 1})
    relay = Relay(store, [sink], settings())
    relay.run_once(T0)
    assert sink.waves and all(
        len({i.rsplit("-", 2)[0] for i in wave}) == len(wave) for wave in sink.waves
    )
    assert any(len(wave) > 1 for wave in sink.waves)
    got = by_instance(sink.got)
    assert got[first] == [e.id for e in engine.store.outbox(first)][:1]
    assert got[second] == [e.id for e in engine.store.outbox(second)]
    drain(relay, T0 + timedelta(hours=1))
    assert by_instance(sink.got)[first] == [e.id for e in engine.store.outbox(first)]
    assert sink.calls.count(stuck) == 2


def test_retry_waits_exponential_backoff_before_the_next_attempt(
    engine: Engine, store: SQLStore
) -> None:
    """After the n-th failure the next attempt waits base*2**(n-1) s (half to all of it)."""
    drive(engine, instances=1, notes=0, close=False)
    (event_id,) = outbox_ids(engine)
    sub = Flaky({event_id: 10})
    relay = Relay(store, [SubscriberSink("s", sub)], settings(retry_base=10.0, retry_cap=1000.0))
    now = T0
    for n in range(1, 5):
        relay.run_once(now)
        row = delivery_rows(relay, "sub:s")[event_id]
        wait = (datetime.fromisoformat(row["next_attempt_at"]) - now).total_seconds()
        full = 10.0 * 2 ** (n - 1)
        assert (row["attempts"], full / 2 <= wait <= full) == (n, True)
        relay.run_once(now + timedelta(seconds=wait - 0.5))  # too early: not tried
        assert len(sub.calls) == n
        now += timedelta(seconds=wait)


def test_backoff_is_jittered_and_capped(tmp_path: Path) -> None:
    """Waits double, jitter within half to all of it, stop at the cap; Retry-After is honoured."""
    relay = Relay(f"sqlite:///{tmp_path / 'x.db'}", [], settings(retry_base=0.5, retry_cap=30.0))
    for n in range(1, 40):
        full = min(30.0, 0.5 * 2 ** (n - 1))
        waits = {relay.backoff(n) for _ in range(20)}
        assert all(full / 2 <= w <= full for w in waits) and len(waits) > 1
    assert relay.backoff(1, retry_after=20) == 20
    assert relay.backoff(1, retry_after=999) == 30.0


def test_delivery_is_dead_after_max_attempts_and_listed_as_failed(
    engine: Engine, store: SQLStore
) -> None:
    """After max_attempts failures the delivery is dead, listed with its last error, not retried."""
    drive(engine, instances=1, notes=0, close=False)
    (event_id,) = outbox_ids(engine)
    sub = Flaky({event_id: 100})
    relay = Relay(store, [SubscriberSink("s", sub)], settings(max_attempts=3))
    for hour in range(6):
        relay.run_once(T0 + timedelta(hours=hour))
    assert len(sub.calls) == 3
    (dead,) = relay.failed()
    assert (dead.event_id, dead.sink, dead.attempts) == (event_id, "sub:s", 3)
    assert dead.type == "xieshang.instance.started" and "cannot take" in (dead.last_error or "")


def test_final_failure_is_dead_at_once_and_no_longer_holds_back_later_events(
    engine: Engine, store: SQLStore
) -> None:
    """A non-retryable failure dead-letters at once; the instance's later events are delivered."""
    (iid,) = drive(engine, instances=1, notes=2, close=False)
    ids = outbox_ids(engine)
    sub = Flaky({ids[1]: 1}, final=True)
    relay = Relay(store, [SubscriberSink("s", sub)], settings())
    relay.run_once(T0)
    assert [e["id"] for e in sub.got] == [ids[0], ids[2]]
    assert [d.event_id for d in relay.failed()] == [ids[1]]
    assert iid


def test_retry_redrives_a_dead_letter_which_is_then_delivered(
    engine: Engine, store: SQLStore
) -> None:
    """``retry`` makes a dead letter pending with fresh attempts; the next pass delivers it."""
    drive(engine, instances=1, notes=0, close=False)
    (event_id,) = outbox_ids(engine)
    sub = Flaky({event_id: 1}, final=True)
    relay = Relay(store, [SubscriberSink("s", sub)], settings())
    relay.run_once(T0)
    assert relay.retry(event_id, now=T0) == 1
    assert relay.failed() == []
    assert relay.run_once(T0) == 1
    assert [e["id"] for e in sub.got] == [event_id]
    with pytest.raises(NotFound, match=event_id):
        relay.retry(event_id)


def test_retry_of_an_event_without_a_dead_letter_raises_not_found(store: SQLStore) -> None:
    """Re-driving an id that has no dead delivery raises NotFound naming it."""
    relay = Relay(store, [], settings())
    with pytest.raises(NotFound, match="no-such-event"):
        relay.retry("no-such-event", sink="sub:s")


# -- nothing that was not committed -----------------------------------------------------------


def test_refused_command_produces_no_event(engine: Engine, store: SQLStore) -> None:
    """A refused command writes no outbox row, so the relay announces nothing for it."""
    (iid,) = drive(engine, instances=1, notes=0, close=False)
    sub = Flaky()
    relay = Relay(store, [SubscriberSink("s", sub)], settings())
    relay.run_once(T0)
    with pytest.raises(XieshangError):
        engine.fire(iid, "note", CLERK, {})  # the payload misses its required note
    with pytest.raises(XieshangError):
        engine.fire(iid, "no_such_trigger", CLERK)
    assert relay.run_once(T0) == 0
    assert len(sub.got) == len(outbox_ids(engine)) == 1


class _FailingOutbox:
    """A store whose next commit writes an event id that exists: its transaction rolls back."""

    def __init__(self, inner: SQLStore, duplicate: EventRecord) -> None:
        self._inner = inner
        self._duplicate = duplicate

    def apply(self, commit: Commit) -> None:
        commit.events.append(self._duplicate)
        self._inner.apply(commit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_rolled_back_transaction_produces_no_event(engine: Engine, store: SQLStore) -> None:
    """A commit that fails after writing its rows is rolled back whole and announces nothing."""
    (iid,) = drive(engine, instances=1, notes=0, close=False)
    sub = Flaky()
    relay = Relay(store, [SubscriberSink("s", sub)], settings())
    relay.run_once(T0)
    broken = make_engine(_FailingOutbox(store, store.outbox()[0]))  # type: ignore[arg-type]
    with pytest.raises(XieshangError):
        broken.fire(iid, "note", CLERK, {"note": "回滚"})
    assert store.load(iid, fresh=True).version == 1  # type: ignore[union-attr]
    assert relay.run_once(T0) == 0
    assert [e["id"] for e in sub.got] == outbox_ids(engine)
    assert len(outbox_ids(engine)) == 1


# -- several relays ---------------------------------------------------------------------------


@pytest.mark.postgres
def test_several_relays_on_postgres_never_deliver_an_event_twice_or_out_of_order() -> None:
    """Four relays draining one PostgreSQL outbox deliver each event once, in order per instance."""
    with fresh_pg_database() as db_url, open_store(db_url) as store:
        engine = make_engine(store)
        _race_relays(db_url, engine)


def _race_relays(db_url: str, engine: Engine) -> None:
    drive(engine, instances=6, notes=5)
    lock = threading.Lock()
    arrivals: list[dict[str, Any]] = []

    def collect(event: dict[str, Any]) -> None:
        time.sleep(0.002)  # widen the window in which relays overlap
        with lock:
            arrivals.append(event)

    relays = [Relay(db_url, [SubscriberSink("shared", collect)], settings()) for _ in range(4)]
    stop = threading.Event()
    workers = [threading.Thread(target=r.run_forever, args=(stop, 0.005)) for r in relays]
    for w in workers:
        w.start()
    expected = len(outbox_ids(engine))
    deadline = time.monotonic() + 60
    while (len(arrivals) < expected or relays[0].pending()) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # a late duplicate would arrive now
    stop.set()
    for w in workers:
        w.join(10)
    for r in relays:
        r.close()
    counts = Counter(e["id"] for e in arrivals)
    assert sorted(counts) == sorted(outbox_ids(engine))
    assert set(counts.values()) == {1}
    assert by_instance(arrivals) == by_instance([e.body for e in engine.store.outbox()])


# -- the commands -----------------------------------------------------------------------------


def test_cli_lists_dead_letters_and_retries_them(
    engine: Engine, store: SQLStore, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``events list --failed`` shows dead letters, ``events retry`` re-drives; unknown id: 1."""
    drive(engine, instances=1, notes=0, close=False)
    (event_id,) = outbox_ids(engine)
    relay = Relay(store, [SubscriberSink("s", Flaky({event_id: 1}, final=True))], settings())
    relay.run_once(T0)
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        pass

    register_cli(app)
    monkeypatch.setenv("XIESHANG_DATABASE_URL", db_url)
    runner = CliRunner()
    listed = runner.invoke(app, ["events", "list", "--failed", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [d["event_id"] for d in json.loads(listed.stdout)] == [event_id]
    summary = runner.invoke(app, ["events", "list"])
    assert "sub:s  dead  1" in summary.stdout
    retried = runner.invoke(app, ["events", "retry", event_id])
    assert retried.exit_code == 0 and "re-driven 1" in retried.stdout
    assert relay.failed() == []
    missing = runner.invoke(app, ["events", "retry", "nope"])
    assert missing.exit_code == 1 and "nope" in missing.stderr
