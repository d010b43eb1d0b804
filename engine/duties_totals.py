"""A member's year counted from duty records: points by category with the caps applied, the
year's total with its cap, and the quotas not met.

Records keep the points as earned; caps are applied here, when a year is counted: a category
counts at most its ``cap`` points, and the year at most ``year_cap`` over all categories. A
quota counts the records of its category that earned more than zero points (a leave of
absence is recorded with zero points and meets no attendance quota).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .duties import DutyRecord, DutyRules

__all__ = ["MemberYear", "Shortfall", "count_year"]


@dataclass(frozen=True, slots=True)
class Shortfall:
    """A quota not met: ``have`` records of ``category`` above zero points, ``need`` required."""

    category: str
    need: int
    have: int

    def to_dict(self) -> dict[str, Any]:
        return {"category": self.category, "need": self.need, "have": self.have}


@dataclass
class MemberYear:
    """One member's year: records, raw and counted points by category, the total counted."""

    member: str
    year: int
    records: list[DutyRecord] = field(default_factory=list)
    earned: dict[str, int] = field(default_factory=dict)  # raw points by category
    counted: dict[str, int] = field(default_factory=dict)  # after the category caps
    items: dict[str, int] = field(default_factory=dict)  # records above zero by category
    total: int = 0  # after the year cap
    shortfalls: list[Shortfall] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "year": self.year,
            "total": self.total,
            "earned": self.earned,
            "counted": self.counted,
            "items": self.items,
            "shortfalls": [s.to_dict() for s in self.shortfalls],
            "records": [r.to_dict() for r in self.records],
        }


def count_year(
    rules: DutyRules, year: int, records: Iterable[DutyRecord], members: Iterable[str] = ()
) -> dict[str, MemberYear]:
    """Each member's year from ``records`` (those of other years are ignored); ``members``
    are counted too when they have no record (their quotas all unmet)."""
    out: dict[str, MemberYear] = {m: MemberYear(m, year) for m in members}
    for r in records:
        if r.year != year:
            continue
        my = out.setdefault(r.member, MemberYear(r.member, year))
        my.records.append(r)
        my.earned[r.category] = my.earned.get(r.category, 0) + r.points
        if r.points > 0:
            my.items[r.category] = my.items.get(r.category, 0) + 1
    categories = rules.file.categories
    for my in out.values():
        my.records.sort(key=lambda r: (r.occurred_at, r.instance_id, r.seq, r.rule))
        for name, points in sorted(my.earned.items()):
            cap = categories[name].cap if name in categories else None
            my.counted[name] = min(points, cap) if cap is not None else points
        total = sum(my.counted.values())
        cap = rules.file.year_cap
        my.total = min(total, cap) if cap is not None else total
        for quota in rules.file.quotas:
            have = my.items.get(quota.category, 0)
            if have < quota.at_least:
                my.shortfalls.append(Shortfall(quota.category, quota.at_least, have))
    return dict(sorted(out.items()))
