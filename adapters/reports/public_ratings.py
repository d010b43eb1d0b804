"""网民满意度: the public's ratings of the year's proposals, given on the public progress page."""

from __future__ import annotations

from collections import Counter
from typing import Any

import sqlalchemy as sa

from xieshang.adapters.sql.tables import public_ratings as RATINGS

from .labels import SATISFACTION, SATISFACTION_ZH
from .model import Rate, Report
from .reading import Reader, new_report

__all__ = ["public_ratings_report"]

_HEADERS = ["提案编号", "案由", *(SATISFACTION_ZH[s] for s in SATISFACTION), "评价数", "满意率"]


def public_ratings_report(source: Any, year: int, org: str | None = None) -> Report:
    """网民满意度: ratings by kind, the rate of satisfied and basically satisfied, per proposal."""
    reader = Reader(source)
    try:
        scope = reader.scope("proposal", year, org)
        rows = {r.id: r for r in reader.instances(scope)}
        q = (
            sa.select(RATINGS.c.instance_id, RATINGS.c.rating, sa.func.count())
            .where(RATINGS.c.instance_id.in_(scope))
            .group_by(RATINGS.c.instance_id, RATINGS.c.rating)
        )
        per: dict[str, Counter[str]] = {}
        with reader.engine.connect() as conn:
            for iid, rating, n in conn.execute(q):
                per.setdefault(iid, Counter())[rating] += n
    finally:
        reader.close()
    rep = new_report("public_ratings", "网民满意度", year, org)
    total: Counter[str] = Counter()
    for counts in per.values():
        total.update(counts)
    ratings = sum(total.values())
    content = total["satisfied"] + total["basically_satisfied"]
    rep.figures = {
        "rated_proposals": len(per),
        "ratings": ratings,
        "by_rating": {s: total[s] for s in SATISFACTION},
    }
    rep.rates = {"satisfaction_rate": Rate(content, ratings)}
    rep.add("总体", "获网民评价的提案", len(per))
    rep.add("总体", "网民评价（次）", ratings)
    for s in SATISFACTION:
        rep.add("按评价", SATISFACTION_ZH[s], total[s], Rate(total[s], ratings))
    rep.add("总体", "网民满意率（满意+基本满意）", content, rep.rates["satisfaction_rate"])
    shown = [i for i in rows if i in per]
    rep.wide["各提案网民满意度"] = (
        _HEADERS,
        [_wide_row(rows[i].data, per[i]) for i in shown],
    )
    rep.row_ids["各提案网民满意度"] = [(i,) for i in shown]
    return rep


def _wide_row(data: dict[str, Any], counts: Counter[str]) -> list[Any]:
    n = sum(counts.values())
    return [
        data.get("number") or "",
        data.get("title"),
        *(counts[s] for s in SATISFACTION),
        n,
        Rate(counts["satisfied"] + counts["basically_satisfied"], n).text,
    ]
