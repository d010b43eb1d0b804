"""A run of the demo year: the lives started, the clock driven to the year's end, the reports."""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from xieshang import CalendarChain, Engine, FixedClock
from xieshang.adapters.reports import (
    Report,
    appraisal_report,
    duties_report,
    handling_report,
    key_proposals_report,
    micro_report,
    online_report,
    opinions_report,
    plan_report,
    review_report,
)
from xieshang.workflows import bundled, default_duties

from .appraisal import TARGETS, appraisal_life
from .cast import ORG, YEAR, day
from .duties import (
    MEETINGS,
    STANDING,
    awards_life,
    demo_rules,
    meeting_life,
    pin_rules,
    standing_report_life,
)
from .key_proposals import key_proposal_life
from .micro import micro_life
from .online import online_life
from .opinions import opinion_life
from .plan import plan_life
from .proposals import proposal_life
from .sim import Sim


@dataclass
class DemoResult:
    """What a run did: wall time, transitions (history rows), database size, reports, refusals."""

    db: Path
    seconds: float
    transitions: int
    instances: int
    db_bytes: int
    refusals: list[str] = field(default_factory=list)
    reports: dict[str, Report] = field(default_factory=dict)
    verify_problems: list[dict[str, Any]] = field(default_factory=list)


def _remove(db: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = Path(str(db) + suffix)
        if p.exists():
            p.unlink()


def run_demo(
    db: Path = Path("xieshang-demo.db"),
    *,
    seed: int = 2024,
    proposals: int = 240,
    topics: int = 51,
    opinions: int = 26,
    micro: int = 12,
    online: int = 6,
    console: Console | None = None,
    progress: bool = True,
    calendar: CalendarChain | None = None,
) -> DemoResult:
    """Run the simulated year into a fresh database at ``db``; see the module docstring.

    ``calendar`` is the deployment's working-day calendar (the package tables when None).
    """
    from xieshang.adapters.sql import open_store

    began = time.perf_counter()
    _remove(db)
    url = f"sqlite:///{db}"
    store = open_store(url, synchronous="NORMAL")
    counter = iter(range(1, 10**9))
    clock = FixedClock(day(date(YEAR, 1, 2), 9))
    registry = bundled()
    rules = demo_rules(default_duties(registry))
    engine = Engine(
        store,
        registry,
        clock,
        ids=lambda: f"{seed:x}-{next(counter):06d}",
        calendar=calendar,
        duties=rules,
    )
    rng = random.Random(seed)
    sim = Sim(engine, clock, rng)
    held = min(topics, max(1, round(topics * 0.6)))
    instructed = min(held, 9)
    sim.add("plan", plan_life(sim, topics, held, instructed))
    main_ids: list[str] = []
    for n in range(proposals):
        sim.add("proposal", proposal_life(sim, n, main_ids))
    for n in range(opinions):
        sim.add("opinion", opinion_life(sim, n))
    for k in range(len(TARGETS)):
        sim.add("appraisal", appraisal_life(sim, k))
    sim.add("key", key_proposal_life(sim, main_ids))
    for n in range(micro):
        sim.add("micro", micro_life(sim, n))
    for n in range(online):
        sim.add("online", online_life(sim, n))
    members_rng = random.Random(seed + 1)  # the members' lives draw apart from the others
    for k in range(len(MEETINGS)):
        sim.add("members", meeting_life(sim, members_rng, k))
    for n in range(STANDING):
        sim.add("members", standing_report_life(sim, members_rng, n))
    sim.add("members", awards_life(sim))

    totals = {
        "plan": 1 + topics,
        "proposal": proposals,
        "opinion": opinions,
        "appraisal": len(TARGETS),
        "key": 1,
        "micro": micro,
        "online": online,
        "members": len(MEETINGS) + STANDING + 1,
    }
    labels = {
        "plan": "年度协商计划与议题",
        "proposal": "提案办理",
        "opinion": "社情民意信息",
        "appraisal": "民主评议",
        "key": "重点提案遴选与督办",
        "micro": "小微协商",
        "online": "网络协商",
        "members": "委员履职（会议、述职、评优）",
    }
    end = day(date(YEAR, 12, 31), 18)
    if progress:
        bar = Progress(
            TextColumn("{task.description}", style="bold"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        with bar:
            tasks = {k: bar.add_task(labels[k], total=totals[k]) for k in totals}
            month_task = bar.add_task("模拟时钟（月）", total=12)
            sim.on_step = lambda kind: bar.advance(tasks["plan" if kind == "topic" else kind])
            for month in range(1, 13):
                sim.run(day(date(YEAR, month + 1, 1), 0) if month < 12 else end)
                bar.update(month_task, completed=month)
    else:
        sim.run(end)

    pin_rules(engine, rules)
    reports = {
        "review": review_report(engine, YEAR, ORG),
        "handling": handling_report(engine, YEAR, ORG),
        "plan": plan_report(engine, YEAR, ORG),
        "opinions": opinions_report(engine, YEAR, ORG),
        "key_proposals": key_proposals_report(engine, YEAR, ORG),
        "appraisal": appraisal_report(engine, YEAR, ORG),
        "micro": micro_report(engine, YEAR, ORG),
        "online": online_report(engine, YEAR, ORG),
        "duties": duties_report(engine, YEAR, ORG),
    }
    problems = engine.verify()
    with _counting(url) as conn:
        transitions = conn.execute(sa.text("SELECT count(*) FROM history")).scalar_one()
        instances = conn.execute(sa.text("SELECT count(*) FROM instances")).scalar_one()
    store.close()
    return DemoResult(
        db=db,
        seconds=time.perf_counter() - began,
        transitions=int(transitions),
        instances=int(instances),
        db_bytes=sum(
            os.path.getsize(str(db) + s) for s in ("", "-wal") if os.path.exists(str(db) + s)
        ),
        refusals=sim.refusals,
        reports=reports,
        verify_problems=problems,
    )


class _counting:
    """A short-lived connection for the closing counts."""

    def __init__(self, url: str) -> None:
        from xieshang.adapters.sql import engine_for

        self.engine: sa.Engine = engine_for(url)[0]

    def __enter__(self) -> sa.Connection:
        self.conn: sa.Connection = self.engine.connect()
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()
        self.engine.dispose()
