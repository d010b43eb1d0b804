"""How fast `tick` works through due timers when many more are pending.

    python bench/tick.py [--pending 100000] [--due 1000] [--pg URL]

1,000 instances of a one-state workflow whose deadline has passed (each tick marks one overdue:
a history row, an event, the instance updated, the timer consumed), among 100,000 pending
timers that are not yet due. Prints the due timers handled per second, on SQLite (a temporary
file, synchronous=NORMAL) and on PostgreSQL when a URL is given.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from xieshang import Actor, Engine, FixedClock, Registry, load_definition
from xieshang.adapters.sql import open_store
from xieshang.records import Commit, TimerRecord

CN = timezone(timedelta(hours=8))
WORKFLOW = """
id: bench_deadline
version: 1
title: 计时基准
calendar: weekdays
roles: {clerk: 办事员}
states:
  waiting: {initial: true, label: 等待, deadline: {after: 1 day}}
  done: {final: true, label: 完成}
transitions:
  - {trigger: finish, from: waiting, to: done, roles: [clerk]}
"""


def run(url: str, pending: int, due: int) -> None:
    clock = FixedClock(datetime(2024, 3, 4, 9, tzinfo=CN))
    with open_store(url, synchronous="NORMAL") as store:
        engine = Engine(store, Registry([load_definition(WORKFLOW)]), clock)
        clerk = Actor.of("c", "clerk")
        ids = [engine.start("bench_deadline", {}, clerk).id for _ in range(due)]
        far = datetime(2026, 6, 1, tzinfo=CN)
        filler = [
            TimerRecord(ids[i % due], "timer", "finish", far + timedelta(seconds=i), 1)
            for i in range(pending - due)
        ]
        for k in range(0, len(filler), 10_000):
            store.apply(Commit(timers=filler[k : k + 10_000]))
        now = datetime(2024, 3, 10, tzinfo=CN)
        started = time.perf_counter()
        handled = 0
        while True:
            report = engine.tick(now, limit=200)
            handled += report.fired
            if report.fired == 0:
                break
        elapsed = time.perf_counter() - started
        print(
            f"{url.split(':')[0]:>10}: {handled} due of {pending} pending timers in "
            f"{elapsed:.2f} s = {handled / elapsed:,.0f} timers/s"
        )
        assert handled == due
    return handled / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=1_000)
    parser.add_argument("--pg", help="a PostgreSQL URL to measure too (an empty database)")
    parser.add_argument("--quick", action="store_true", help="10,000 pending, 500 due")
    args = parser.parse_args()
    if args.quick:
        args.pending, args.due = 10_000, 500
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        rates["sqlite"] = run(f"sqlite:///{Path(tmp) / 'tick.db'}", args.pending, args.due)
    if args.pg:
        rates["postgresql"] = run(args.pg, args.pending, args.due)
    shown = " ".join(f"{k}_timers_per_s={v:.0f}" for k, v in rates.items())
    print(f"RESULT pending={args.pending} due={args.due} {shown}")


if __name__ == "__main__":
    main()
