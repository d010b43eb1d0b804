"""The simulation: lives (generators) queued by when they next act, on a fixed clock."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta

from xieshang import CommandRefused, Engine, FixedClock

from .cast import day

Life = Iterator[datetime]


class Sim:
    """A queue of lives (generators): each yields when it next acts; the clock follows."""

    def __init__(self, engine: Engine, clock: FixedClock, rng: random.Random) -> None:
        self.engine = engine
        self.clock = clock
        self.rng = rng
        self.queue: list[tuple[datetime, int, str, Life]] = []
        self.seq = 0
        self.refusals: list[str] = []
        self.last_tick: date | None = None
        self.on_step: Callable[[str], None] = lambda kind: None

    def add(self, kind: str, life: Life) -> None:
        try:
            when = next(life)
        except StopIteration:
            return
        self.seq += 1
        heapq.heappush(self.queue, (when, self.seq, kind, life))

    def run(self, until: datetime) -> None:
        while self.queue and self.queue[0][0] <= until:
            when, _, kind, life = heapq.heappop(self.queue)
            self._tick_to(when)
            self.clock.set(when)
            try:
                nxt = next(life)
            except StopIteration:
                self.on_step(kind)
                continue
            except CommandRefused as e:
                self.refusals.append(f"{kind} {when:%m-%d}: {e}")
                self.on_step(kind)
                continue
            self.seq += 1
            heapq.heappush(self.queue, (max(nxt, when), self.seq, kind, life))
        self._tick_to(until)
        self.clock.set(until)

    def _tick_to(self, when: datetime) -> None:
        # the timers of every day up to this moment fire at 08:00 of each day
        today = when.date()
        if self.last_tick is None:
            self.last_tick = today
            return
        d = self.last_tick + timedelta(days=1)
        while d <= today:
            moment = day(d, 8)
            if moment <= when:
                self.clock.set(moment)
                while self.engine.tick(moment).fired:
                    pass
                self.last_tick = d
            d += timedelta(days=1)
