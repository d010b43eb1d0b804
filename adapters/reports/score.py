"""承办单位办理得分: the per-unit handling score of the handling report, and its formula.

The weights are params of the unit workflow (``proposal_handling``), read from the definition
the units are pinned to, so a deployment changes them as it changes any time limit:

- ``score_on_time`` (40), ``score_satisfaction`` (40), ``score_class_a`` (20): the points of the
  on-time rate of first replies, the satisfaction rate and the class-A share. Full marks are
  their sum (100 by default). A part with nothing to count yet (no first reply, no evaluation)
  is left out with its weight and the others scaled up to full marks (缺项按比例折算); with no
  part at all the unit starts from full marks.
- ``score_late_reply`` (5), ``score_late_opinion`` (2): points off for each late first reply and
  each late assisting opinion. The score never goes below 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from xieshang import CalendarError, parse_duration

from .model import Rate

__all__ = ["SCORE_PARAMS", "Weights", "formula_notes", "unit_score"]

SCORE_PARAMS = (
    "score_on_time",
    "score_satisfaction",
    "score_class_a",
    "score_late_reply",
    "score_late_opinion",
)


@dataclass(frozen=True)
class Weights:
    """The score's weights (points), exact."""

    on_time: Fraction
    satisfaction: Fraction
    class_a: Fraction
    late_reply: Fraction
    late_opinion: Fraction

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Weights | None:
        """The weights in ``params``; None when one of :data:`SCORE_PARAMS` is not a number
        (a unit workflow of a deployment's own that does not declare them)."""
        values = [params.get(name) for name in SCORE_PARAMS]
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            return None
        # through str: a weight of 0.1 is one tenth, not the binary float nearest to it
        return cls(*(Fraction(str(v)) for v in values))

    @property
    def full_marks(self) -> Fraction:
        return self.on_time + self.satisfaction + self.class_a

    def to_dict(self) -> dict[str, float | int]:
        """The weights by param name, as numbers."""
        values = (self.on_time, self.satisfaction, self.class_a, self.late_reply, self.late_opinion)
        return {name: _number(v) for name, v in zip(SCORE_PARAMS, values, strict=True)}


def unit_score(
    w: Weights,
    *,
    on_time: Rate,
    satisfaction: Rate,
    class_a: Rate,
    late_replies: int,
    late_opinions: int,
) -> float | int:
    """The score, rounded half up to one decimal; a whole score is an int (every format shows
    it the same way). See the module's docstring."""
    parts = ((w.on_time, on_time), (w.satisfaction, satisfaction), (w.class_a, class_a))
    counted = [(weight, r.fraction) for weight, r in parts if weight and r.fraction is not None]
    weight = sum((weight for weight, _ in counted), Fraction(0))
    earned = sum((weight * f for weight, f in counted), Fraction(0))
    base = w.full_marks * earned / weight if weight else w.full_marks
    value = base - w.late_reply * late_replies - w.late_opinion * late_opinions
    return _one_decimal(max(value, Fraction(0)))


def formula_notes(w: Weights, params: Mapping[str, Any]) -> list[str]:
    """The report's notes: the score's formula with these weights, and what its parts count."""
    full = _text(w.full_marks)
    notes = [
        f"承办单位得分（满分{full}）= {full} ×（{_text(w.on_time)}×按期答复率 + "
        f"{_text(w.satisfaction)}×满意率 + {_text(w.class_a)}×A类占比）÷ 计入项分值之和 − "
        f"{_text(w.late_reply)}×逾期答复件数 − {_text(w.late_opinion)}×逾期会办意见件数，最低0分；"
        "尚无可计的项（无首次答复、无评价）不计入，按比例折算，都没有时以满分起算。",
        "按期答复率 = 按期的首次答复 ÷ 首次答复：首次答复不晚于当时的答复期限（含批准的延期）"
        "为按期，重新办理的答复不改变它；满意率 =（满意+基本满意）÷ 已评价；"
        "A类占比 = A类答复 ÷ 答复件次。",
    ]
    window = params.get("assist_opinion_window")
    try:
        within = parse_duration(window).zh if isinstance(window, str) else None
    except CalendarError:
        within = None
    if within:
        notes.append(f"会办意见须在交办后{within}内送主办单位，逾期送达照收，计为逾期会办意见。")
    names = "、".join(SCORE_PARAMS)
    notes.append(f"分值取自承办流程（proposal_handling）的参数 {names}，可按部署调整。")
    return notes


def _one_decimal(value: Fraction) -> float | int:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    rounded = exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return int(rounded) if rounded == rounded.to_integral_value() else float(rounded)


def _number(value: Fraction) -> float | int:
    return value.numerator if value.denominator == 1 else float(value)


def _text(value: Fraction) -> str:
    return f"{_number(value):g}"
