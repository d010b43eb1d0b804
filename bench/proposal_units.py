"""A whole proposal with a lead and two assisting units, start to close, on SQLite.

    python bench/proposal_units.py [--n 50] [--synchronous FULL|NORMAL]

Each proposal takes 5 steps of its own, 4 of the lead unit, 3 of each assisting unit and the
evaluation (the join that moves the proposal fires inside the lead's last step). Prints
commands per second and proposals per second.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from xieshang import Actor, Engine, FixedClock
from xieshang.adapters.sql import open_store
from xieshang.workflows import bundled

CN = timezone(timedelta(hours=8))
MEMBER = Actor.of("m1", "member", org="city")
STAFF = Actor.of("s1", "proposal_committee", org="city")
OFFICE = Actor.of("o1", "supervision_office", org="city")
UNITS = ["transport", "traffic_police", "housing"]


def unit(name: str) -> Actor:
    return Actor.of(f"staff-{name}", "handling_unit", org="city", unit=name)


def one_proposal(engine: Engine, n: int) -> int:
    pid = engine.start("proposal", {"title": f"提案{n}", "first_proposer": "m1"}, MEMBER).id
    engine.fire(pid, "submit", MEMBER, {"category": "society"})
    engine.fire(pid, "start_review", STAFF)
    engine.fire(pid, "file", STAFF, {"number": str(n)})
    engine.fire(
        pid, "assign", OFFICE, {"mode": "lead_assisting", "lead_unit": "transport", "units": UNITS}
    )
    kids = {c.unit: c.id for c in engine.children(pid)}
    commands = 5
    for name in UNITS:
        engine.fire(kids[name], "acknowledge", unit(name), {"contact_person": "联系人"})
        engine.fire(kids[name], "contact_proposer", unit(name), {"mode": "phone"})
        commands += 2
    for name in UNITS[1:]:
        engine.fire(kids[name], "send_assist_opinion", unit(name), {"opinion": "同意"})
        commands += 1
    engine.fire(
        kids["transport"],
        "draft_reply",
        unit("transport"),
        {"reply_class": "A", "reply_text": "答复", "signer": "局长"},
    )
    for name in UNITS[1:]:
        engine.fire(kids[name], "countersign", unit(name))
        commands += 1
    engine.fire(kids["transport"], "submit_reply", unit("transport"))
    engine.fire(kids["transport"], "approve_reply", OFFICE)
    engine.fire(pid, "evaluate", MEMBER, {"satisfaction": "satisfied"})
    return commands + 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL"])
    parser.add_argument("--quick", action="store_true", help="20 proposals")
    args = parser.parse_args()
    if args.quick:
        args.n = 20
    with (
        tempfile.TemporaryDirectory() as tmp,
        open_store(f"sqlite:///{Path(tmp) / 'units.db'}", synchronous=args.synchronous) as store,
    ):
        engine = Engine(store, bundled(), FixedClock(datetime(2024, 3, 4, 9, tzinfo=CN)))
        one_proposal(engine, 0)  # warm the caches
        started = time.perf_counter()
        commands = sum(one_proposal(engine, n) for n in range(1, args.n + 1))
        elapsed = time.perf_counter() - started
        assert engine.verify() == []
    print(
        f"SQLite synchronous={args.synchronous}: {args.n} proposals with 3 units, "
        f"{commands} commands in {elapsed:.2f} s = {commands / elapsed:,.0f} commands/s, "
        f"{args.n / elapsed:.1f} proposals/s"
    )
    print(
        f"RESULT synchronous={args.synchronous} proposals={args.n} commands={commands} "
        f"commands_per_s={commands / elapsed:.0f} proposals_per_s={args.n / elapsed:.1f}"
    )


if __name__ == "__main__":
    main()
