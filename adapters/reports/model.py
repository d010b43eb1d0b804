"""A report's figures: exact rates (:class:`Rate`), printed lines and the :class:`Report`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

__all__ = ["Line", "Rate", "Report"]


@dataclass(frozen=True)
class Rate:
    """An exact ratio; ``percent`` rounds half up to one decimal, None when nothing to divide."""

    numerator: int
    denominator: int

    @property
    def fraction(self) -> Fraction | None:
        return Fraction(self.numerator, self.denominator) if self.denominator else None

    @property
    def percent(self) -> float | None:
        f = self.fraction
        if f is None:
            return None
        exact = Decimal(f.numerator * 100) / Decimal(f.denominator)
        return float(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))

    @property
    def text(self) -> str:
        p = self.percent
        return "—" if p is None else f"{p:.1f}%"

    def to_dict(self) -> dict[str, Any]:
        return {
            "numerator": self.numerator,
            "denominator": self.denominator,
            "percent": self.percent,
        }


@dataclass(frozen=True)
class Line:
    """One row of the printed report: section, item, count and (optionally) a rate."""

    section: str
    item: str
    count: int | float | None  # a count, or a score
    rate: Rate | None = None


@dataclass
class Report:
    """A report's figures: ``figures`` (counts, nested by dimension), ``rates`` and ``lines``."""

    kind: str
    title: str
    year: int
    org: str | None
    figures: dict[str, Any] = field(default_factory=dict)
    rates: dict[str, Rate] = field(default_factory=dict)
    lines: list[Line] = field(default_factory=list)
    # tables with one row per unit (or reporter): shown instead of their sections in a terminal,
    # and as extra sheets in a workbook
    wide: dict[str, tuple[list[str], list[list[Any]]]] = field(default_factory=dict)
    detail: set[str] = field(default_factory=set)
    # the instances each row of a wide table shows, and each line that shows one instance:
    # a report produced for an actor keeps only those it may read (see .scope)
    row_ids: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    line_ids: dict[int, tuple[str, ...]] = field(default_factory=dict)
    # likewise for each element of a figure that is a list of instances (or of their names)
    figure_ids: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    # how a figure is computed (a score's formula and weights): printed after the lines
    notes: list[str] = field(default_factory=list)

    NOTES = "说明"

    def add(
        self, section: str, item: str, count: int | float | None, rate: Rate | None = None
    ) -> None:
        self.lines.append(Line(section, item, count, rate))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "title": self.title,
            "year": self.year,
            "org": self.org,
            "figures": self.figures,
            "rates": {k: v.to_dict() for k, v in self.rates.items()},
            "notes": self.notes,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2, sort_keys=True)

    def rows(self) -> list[list[Any]]:
        """The printed lines as ``[分组, 项目, 数量, 比例]``, then the notes as ``[说明, text, "",
        ""]``: the same in every format."""
        return [
            *(
                [
                    ln.section,
                    ln.item,
                    "" if ln.count is None else ln.count,
                    "" if ln.rate is None else ln.rate.text,
                ]
                for ln in self.lines
            ),
            *([self.NOTES, note, "", ""] for note in self.notes),
        ]

    HEADERS = ("分组", "项目", "数量", "比例")

    def to_csv(self) -> str:
        """The lines as CSV, under the title (see :func:`.render.to_csv`)."""
        from .render import to_csv

        return to_csv(self)

    def write_csv(self, path: Path) -> None:
        from .render import write_csv

        write_csv(self, path)

    def write_xlsx(self, path: Path) -> None:
        from .render import write_xlsx

        write_xlsx(self, path)
