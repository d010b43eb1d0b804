"""The duty ledger checked and recomputed from history: what ``audit verify`` finds, and the
audited recompute of a year under new rules.

Each year is counted under the rules of its last recompute (whose body the recompute stored),
or, before any, under the engine's rules: verify recomputes an instance's records from its
history under those rules and reports the first record missing, altered or extra.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from .duties import DutyFile, DutyRecord, DutyRules, compile_rules, records_for, year_of
from .records import HistoryEntry, canonical_json

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = [
    "DutyRecompute",
    "DutyStore",
    "RecomputePlan",
    "apply_recompute",
    "duty_findings",
    "expected_records",
    "orphaned_duties",
    "recompute_plan",
    "rules_of_year",
]


@dataclass(frozen=True, slots=True)
class DutyRecompute:
    """The audited record of one recompute: the year, the rules (hash and body) it applied, who
    ran it and when, and each member's total before and after (raw points, before caps).
    ``hash`` covers every other field."""

    year: int
    rules_hash: str
    rules_body: str
    actor: str
    at: str
    before: dict[str, int]
    after: dict[str, int]
    hash: str = ""

    def body(self) -> dict[str, Any]:
        return {
            "year": self.year,
            "rules_hash": self.rules_hash,
            "rules_body": self.rules_body,
            "actor": self.actor,
            "at": self.at,
            "before": self.before,
            "after": self.after,
        }

    def sealed(self) -> DutyRecompute:
        digest = hashlib.sha256(canonical_json(self.body()).encode()).hexdigest()
        object.__setattr__(self, "hash", digest)
        return self


class DutyStore(Protocol):
    """What a store keeps of the duty ledger (the memory and SQL stores implement it)."""

    def duty_records(
        self,
        *,
        year: int | None = None,
        member: str | None = None,
        instance_id: str | None = None,
    ) -> list[DutyRecord]: ...

    def duty_recomputes(self, year: int | None = None) -> list[DutyRecompute]: ...

    def replace_duties(
        self, year: int, records: Sequence[DutyRecord], recompute: DutyRecompute
    ) -> None: ...


@lru_cache(maxsize=32)
def _rules_from_body(body: str) -> DutyRules:
    return compile_rules(DutyFile.model_validate(json.loads(body)), origin="recompute")


def rules_of_year(engine: Engine, year: int) -> DutyRules | None:
    """The rules ``year`` is counted under: its last recompute's, else the engine's."""
    store: DutyStore = engine.store  # type: ignore[assignment]  # stores that keep duties
    done = store.duty_recomputes(year)
    if done:
        return _rules_from_body(done[-1].rules_body)
    return engine.duties


def expected_records(
    org: str,
    steps: Iterable[tuple[HistoryEntry, dict[str, Any]]],
    rules_for: Any,
) -> list[DutyRecord]:
    """The records the rows of ``steps`` (each with the data it left) earn; ``rules_for(year)``
    gives the rules of a year (None: that year writes no records)."""
    out: list[DutyRecord] = []
    for row, data in steps:
        rules = rules_for(year_of(row.occurred_at))
        if rules is not None:
            out += records_for(rules, org, row, data)
    return out


def duty_findings(
    engine: Engine, org: str, instance_id: str, steps: list[tuple[HistoryEntry, dict[str, Any]]]
) -> list[tuple[int | None, str, str]]:
    """The duty records of an instance that differ from a recompute from its history:
    ``duty-missing``, ``duty-altered`` or ``duty-extra``, each with its row."""
    if engine.duties is None:
        return []
    store: DutyStore = engine.store  # type: ignore[assignment]
    years: dict[int, DutyRules | None] = {}

    def rules_for(year: int) -> DutyRules | None:
        if year not in years:
            years[year] = rules_of_year(engine, year)
        return years[year]

    expected = {r.key(): r for r in expected_records(org, steps, rules_for)}
    stored = {r.key(): r for r in store.duty_records(instance_id=instance_id)}
    out: list[tuple[int | None, str, str]] = []
    for key, record in sorted(expected.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][3])):
        held = stored.get(key)
        if held is None:
            out.append(
                (
                    record.seq,
                    "duty-missing",
                    f"row {record.seq} earns {record.member!r} {record.points} points under rule "
                    f"{record.rule!r}, and no such duty record is stored",
                )
            )
        elif held != record:
            out.append(
                (
                    record.seq,
                    "duty-altered",
                    f"the duty record of row {record.seq} for {record.member!r} under rule "
                    f"{record.rule!r} holds {canonical_json(held.to_dict())}; its history gives "
                    f"{canonical_json(record.to_dict())}",
                )
            )
    for key, held in sorted(stored.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][3])):
        if key not in expected:
            out.append(
                (
                    held.seq,
                    "duty-extra",
                    f"a duty record of {held.member!r} ({held.points} points, rule {held.rule!r}) "
                    f"names row {held.seq}, which earns no such record",
                )
            )
    return out


def orphaned_duties(engine: Engine, instance_ids: set[str]) -> list[dict[str, Any]]:
    """A finding (``duty-orphaned``) for each instance that duty records name and the store
    does not hold: records no history can have earned."""
    if engine.duties is None:
        return []
    store: DutyStore = engine.store  # type: ignore[assignment]
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for r in store.duty_records():
        if r.instance_id not in instance_ids and r.instance_id not in seen:
            seen.add(r.instance_id)
            out.append(
                {
                    "instance_id": r.instance_id,
                    "seq": r.seq,
                    "kind": "duty-orphaned",
                    "message": f"duty records of {r.member!r} name instance {r.instance_id!r}, "
                    "which is not stored",
                }
            )
    return out


@dataclass
class RecomputePlan:
    """What a recompute of ``year`` under ``rules`` would store: the records now and then, and
    each member's raw total before and after."""

    year: int
    rules: DutyRules
    old: list[DutyRecord] = field(default_factory=list)
    new: list[DutyRecord] = field(default_factory=list)

    def totals(self, records: Iterable[DutyRecord]) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in records:
            out[r.member] = out.get(r.member, 0) + r.points
        return dict(sorted(out.items()))

    def changes(self) -> list[tuple[str, int, int]]:
        """(member, old total, new total) for every member of either side."""
        before, after = self.totals(self.old), self.totals(self.new)
        return [(m, before.get(m, 0), after.get(m, 0)) for m in sorted(set(before) | set(after))]


def recompute_plan(engine: Engine, rules: DutyRules, year: int) -> RecomputePlan:
    """The records of ``year`` recomputed from every instance's history under ``rules``."""
    from .audit import replay_rows  # audit imports this module

    store: DutyStore = engine.store  # type: ignore[assignment]
    plan = RecomputePlan(year, rules, old=store.duty_records(year=year))
    for instance_id in engine.store.instance_ids():
        rows = engine.store.history(instance_id)
        if not rows or not any(year_of(r.occurred_at) == year for r in rows):
            continue
        stored = engine.store.load(instance_id)
        if stored is None:
            continue
        steps: list[tuple[HistoryEntry, dict[str, Any]]] = []
        replay_rows(engine, rows, unit=stored.unit, after=steps)
        in_year = [(row, data) for row, data in steps if year_of(row.occurred_at) == year]
        plan.new += expected_records(stored.org, in_year, lambda _y: rules)
    return plan


def apply_recompute(engine: Engine, plan: RecomputePlan, actor: str) -> DutyRecompute:
    """Store ``plan``: the year's records replaced by the recomputed ones, and one audited
    record of the recompute naming the rules, in one transaction."""
    from .records import iso

    store: DutyStore = engine.store  # type: ignore[assignment]
    done = DutyRecompute(
        plan.year,
        plan.rules.hash,
        plan.rules.body,
        actor,
        iso(engine.clock.now()),
        plan.totals(plan.old),
        plan.totals(plan.new),
    ).sealed()
    store.replace_duties(plan.year, plan.new, done)
    return done
