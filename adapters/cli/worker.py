"""Commands of time: ``tick`` once, and the ``worker`` with its calendar and duty rules
watches and its checkpoints."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.text import Text

from xieshang import Engine, XieshangError
from xieshang.adapters.settings import load_calendar, load_duty_rules
from xieshang.shared import CHINA_TZ, DutyStore, iso

from .app import JsonFlag, _state, app
from .output import _aware, _emit_json, _err, _moment, _out, _reporting

TICK_LIMIT = 1000
DUTY_CHECK_SECONDS = 60.0  # how often the worker compares its duty rules with the last recompute


@app.command()
def tick(
    ctx: typer.Context,
    now: Annotated[
        str | None,
        typer.Option("--now", help="Fire what is due up to this ISO time (default: the clock)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Fire the timers, deadlines and reminders due up to now, once, as the system actor;
    list each with what became of it."""
    with _reporting(as_json):
        moment = _aware(now, "--now") if now is not None else None
        engine = _state(ctx).engine()
        when = moment or engine.clock.now()
        due = engine.store.due_timers(when, TICK_LIMIT)
        report = engine.tick(when, limit=TICK_LIMIT)
        refused = {line.partition(":")[0] for line in report.refusals}
        timers = [
            {
                "instance_id": t.instance_id,
                "kind": t.kind,
                "trigger": t.trigger,
                "due_at": iso(t.due_at),
                "outcome": "stale" if f"{t.instance_id} {t.trigger}" in refused else "fired",
            }
            for t in due
        ]
        body = {
            "fired": report.fired,
            "stale": report.stale,
            "conflicts": report.conflicts,
            "timers": timers,
            "refusals": report.refusals,
        }
        if as_json:
            _emit_json(body)
            return
        out = _out()
        for t in timers:
            out.print(
                Text(
                    f"{t['outcome']:<6} {t['kind']:<9} {t['trigger']} {t['instance_id']} "
                    f"(due {_moment(t['due_at'])})"
                )
            )
        for line in report.refusals:
            out.print(Text(f"stale  {line}"))
        lost = f"; taken by another worker first: {report.conflicts}" if report.conflicts else ""
        if not timers:
            out.print(Text(f"nothing was due up to {_moment(when)}"))
        out.print(Text(f"fired {report.fired}, stale {report.stale}{lost}"))


@app.command()
def worker(
    ctx: typer.Context,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", help="Seconds between passes when idle.")
    ] = 5.0,
    relay: Annotated[
        bool,
        typer.Option("--relay/--no-relay", help="Also deliver the outbox to the configured sinks."),
    ] = True,
    checkpoint_dir: Annotated[
        Path | None,
        typer.Option("--checkpoint-dir", help="Write signed ledger checkpoints here."),
    ] = None,
    checkpoint_every: Annotated[
        float, typer.Option("--checkpoint-every", help="Minutes between checkpoints.", min=0.01)
    ] = 60.0,
    key_file: Annotated[
        Path | None,
        typer.Option("--key-file", help="The checkpoint key (else env XIESHANG_AUDIT_KEY)."),
    ] = None,
) -> None:
    """Fire due timers (and relay events) until SIGTERM or SIGINT; safe to run several at once.

    With --checkpoint-dir, also sign the ledger head every --checkpoint-every minutes into a
    file named by its time (keep that directory on another machine or write-once storage).
    """
    with _reporting(False):
        engine = _state(ctx).engine()
        checkpoints = _Checkpoints(engine, checkpoint_dir, checkpoint_every, key_file)
        stop = threading.Event()

        def _stop(signum: int, frame: FrameType | None) -> None:
            stop.set()

        previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
        relayer = _worker_relay(ctx) if relay else None
        watch = _CalendarWatch(engine, _state(ctx).settings().calendar)
        watch.poll(first=True)
        duty_watch = _DutyWatch(engine, _state(ctx).settings().duties)
        duty_watch.poll()
        _err().print(
            Text(
                f"worker: ticking every {poll_interval:g} s"
                + (f", relaying to {len(relayer.sinks)} sink(s)" if relayer else "")
            )
        )
        try:
            while not stop.is_set():
                watch.poll()
                duty_watch.poll()
                checkpoints.poll()
                report = engine.tick()
                delivered = relayer.run_once() if relayer is not None else 0
                if report.fired == 0 and delivered == 0:
                    stop.wait(poll_interval)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if relayer is not None:
                relayer.close()
        _err().print(Text("worker: stopped"))


class _Checkpoints:
    """Signs the ledger head into a directory every so many minutes (when it moved)."""

    def __init__(
        self, engine: Engine, directory: Path | None, minutes: float, key_file: Path | None
    ) -> None:
        from xieshang.adapters.checkpoints import load_private_key

        self.engine = engine
        self.directory = directory
        self.seconds = minutes * 60
        self.key = load_private_key(key_file) if directory is not None else None
        self.last = float("-inf")
        self.head: tuple[int, str] | None = None

    def poll(self) -> None:
        import time

        from xieshang.adapters.checkpoints import make_checkpoint, write_checkpoint

        if self.directory is None or self.key is None:
            return
        if time.monotonic() - self.last < self.seconds:
            return
        self.last = time.monotonic()
        head = self.engine.store.ledger_head()
        if head == self.head:
            return
        made = make_checkpoint(self.engine.store, self.key, self.engine.clock.now())
        stamp = made["statement"]["time"].replace(":", "").replace("-", "")[:15]
        write_checkpoint(made, self.directory / f"checkpoint-{stamp}-{head[0]}.json")
        self.head = head


class _CalendarWatch:
    """Reloads the calendar file when it changes and reconciles, on start and after each
    change; a broken file is reported and the calendar in use is kept."""

    def __init__(self, engine: Engine, path: Path | None) -> None:
        self.engine = engine
        self.path = path
        self.seen: float | None = None

    def poll(self, *, first: bool = False) -> None:
        if self.path is None:
            if first:
                self._reconcile()
            return
        try:
            stamp = self.path.stat().st_mtime
        except OSError:
            return
        if stamp == self.seen and not first:
            return
        self.seen = stamp
        if not first:
            try:
                self.engine.use_calendar(load_calendar(self.path))
            except XieshangError as e:
                _err().print(Text(f"worker: calendar file not reloaded: {e.message}", style="red"))
                return
            _err().print(Text(f"worker: calendar {self.path} reloaded"))
        self._reconcile()

    def _reconcile(self) -> None:
        moved = self.engine.reconcile_calendar().changes
        if moved:
            _err().print(Text(f"worker: calendar reconcile moved {len(moved)} deadline(s)"))


class _DutyWatch:
    """Reloads the duty rules file when it changes (a broken file is reported and the rules in
    use are kept), and says when the current year's last recompute applied other rules than
    those in use: steps would then be credited under rules that verify does not check them by
    (see ``docs/duties.md``). Said once per pair of rules, looked at every
    :data:`DUTY_CHECK_SECONDS`."""

    def __init__(self, engine: Engine, path: Path | None) -> None:
        self.engine = engine
        self.path = path
        self.seen: float | None = None
        self.next_check = 0.0
        self.told: tuple[str, str] | None = None
        if path is not None:
            try:
                self.seen = path.stat().st_mtime
            except OSError:
                self.seen = None

    def poll(self) -> None:
        if self.engine.duties is None:
            return
        self._reload()
        now = time.monotonic()
        if now < self.next_check:
            return
        self.next_check = now + DUTY_CHECK_SECONDS
        year = self.engine.clock.now().astimezone(CHINA_TZ).year
        store: DutyStore = self.engine.store  # type: ignore[assignment]  # keeps duties
        recomputes = store.duty_recomputes(year)
        if not recomputes:
            return
        last, in_use = recomputes[-1], self.engine.duties
        pair = (last.rules_hash, in_use.hash)
        if last.rules_hash == in_use.hash or pair == self.told:
            return
        self.told = pair
        _err().print(
            Text(
                f"worker: the duty rules in use ({in_use.hash[:12]}, "
                f"{self.path or 'the bundled default'}) are not those of {year}'s last "
                f"recompute ({last.rules_hash[:12]}, by {last.actor} at {last.at}): steps are "
                "credited under the rules in use and verified under the recompute's; run "
                "with the recompute's file",
                style="yellow",
            )
        )

    def _reload(self) -> None:
        if self.path is None:
            return
        try:
            stamp = self.path.stat().st_mtime
        except OSError:
            return
        if stamp == self.seen:
            return
        self.seen = stamp
        try:
            self.engine.duties = load_duty_rules(self.path, self.engine.registry)
        except XieshangError as e:
            _err().print(Text(f"worker: duty rules not reloaded: {e.message}", style="red"))
            return
        self.next_check = 0.0  # compare the new rules with the recompute at once
        _err().print(Text(f"worker: duty rules {self.path} reloaded"))


def _worker_relay(ctx: typer.Context) -> Any:
    """The event relay with the configured sinks, or None when no sink is configured."""
    from xieshang.adapters.events.cli import _relay

    found = _relay(ctx, with_sinks=True)
    if not found.sinks:
        found.close()
        return None
    return found
