"""The key proposals of the year: candidates from the filed proposals, selected, approved,
flagged on the proposals, and supervised by leaders and committees until their outcome goes
back to the proposal."""

from __future__ import annotations

from datetime import date

from .cast import CHAIRS, COMMITTEE, OFFICE, SPECIAL, YEAR, day
from .sim import Life, Sim

__all__ = ["key_proposal_life"]

LEADERS = ["市长", "常务副市长", "分管副市长", "政协主席", "政协副主席"]
COMMITTEES = ["经济委员会", "人口资源环境委员会", "教科文卫体委员会", "社会和法制委员会"]
# the proposals a key proposal may be flagged in (the proposal's flag_key)
_FLAGGABLE = {"filed", "assigned"}
# how the supervisions end, in order: most are implemented by their due date at the end of
# October; one in four is due at the end of August, runs late and is partly implemented
_OUTCOMES = ["implemented", "implemented", "partly_implemented", "implemented"]


def _late(k: int) -> bool:
    return _OUTCOMES[k % len(_OUTCOMES)] == "partly_implemented"


def key_proposal_life(sim: Sim, main_ids: list[str]) -> Life:
    """``main_ids``: the proposals filed so far (the proposal lives add to it)."""
    engine, rng = sim.engine, sim.rng
    yield day(date(YEAR, 3, 11))
    filed = [pid for pid in main_ids if engine.get(pid).state in _FLAGGABLE]
    # about 6% of the filed proposals become key ones, from twice as many candidates; the
    # selection's ceiling is 10%
    count = min(len(filed), max(1, round(len(main_ids) * 0.06)), len(main_ids) // 10)
    if count == 0:
        return
    sel = engine.start(
        "key_proposal_selection", {"year": YEAR, "filed_count": len(main_ids)}, COMMITTEE
    ).id
    candidates = rng.sample(filed, min(len(filed), 2 * count))
    engine.fire(sel, "propose_candidates", COMMITTEE, {"candidates": candidates})
    yield day(date(YEAR, 3, 15))
    chosen = [
        {
            "proposal_id": pid,
            "lead_leader": LEADERS[k % len(LEADERS)],
            "supervising_committee": COMMITTEES[k % len(COMMITTEES)],
            "due": f"{YEAR}-08-31" if _late(k) else f"{YEAR}-10-31",
        }
        for k, pid in enumerate(candidates[:count])
    ]
    engine.fire(sel, "select", COMMITTEE, {"selected": chosen})
    yield day(date(YEAR, 3, 20))
    engine.fire(sel, "approve", CHAIRS, {"remarks": "同意"})
    for item in chosen:
        pid = item["proposal_id"]
        if engine.get(pid).state in _FLAGGABLE:
            engine.fire(pid, "flag_key", CHAIRS, {"lead_leader": item["lead_leader"]})
    yield day(date(YEAR, 3, 25))
    engine.fire(sel, "start_supervision", OFFICE)
    kids = engine.children(sel)
    for month in range(4, 11):
        yield day(date(YEAR, month, 12))
        for k, kid in enumerate(kids):
            if engine.get(kid.id).final:
                continue
            engine.fire(kid.id, "report_progress", SPECIAL, {"progress": f"{month}月督办进展"})
            if month == 10 or (month >= 8 and not _late(k) and rng.random() < 0.5):
                result = "承办单位办理完毕，结果已向提案人通报"
                outcome = _OUTCOMES[k % len(_OUTCOMES)]
                engine.fire(kid.id, "conclude", SPECIAL, {"outcome": outcome, "result": result})
