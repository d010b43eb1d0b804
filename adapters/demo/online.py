"""Online consultations (网络协商): a topic posted for comments, closed by its timer, then
summarised, submitted and fed back; a topic that drew no comment is closed as it is."""

from __future__ import annotations

from datetime import date, timedelta

from .cast import CATEGORIES, OFFICE, SPECIAL, TOPIC_TITLES, YEAR, day, who
from .sim import Life, Sim

__all__ = ["online_life"]

CHANNELS = ["portal", "app", "wechat_group", "qq_group", "live_broadcast"]


def online_life(sim: Sim, n: int) -> Life:
    """The ``n``-th topic of the year; the last of every five draws no comment."""
    engine, rng = sim.engine, sim.rng
    d0 = date(YEAR, 3, 4) + timedelta(days=40 * n + rng.randrange(10))
    yield day(d0)
    oid = engine.start(
        "online_consultation",
        {
            "title": f"网上议政：{TOPIC_TITLES[(3 * n) % len(TOPIC_TITLES)]}",
            "category": CATEGORIES[n % len(CATEGORIES)],
            "channel": CHANNELS[n % len(CHANNELS)],
        },
        OFFICE,
    ).id
    yield day(d0 + timedelta(days=1))
    engine.fire(oid, "open", OFFICE)
    comments = 0 if n % 5 == 4 else 3 + rng.randrange(10)
    for k in range(comments):
        yield day(d0 + timedelta(days=2 + k % 12), 20)
        author = who(f"m{rng.randrange(180):03d}", "member") if k % 3 else who(f"web-{k}", "public")
        engine.fire(oid, "comment", author, {"text": f"建议{k + 1}：加强统筹，分步推进"})
    # the comment window (15 days) closes by its timer, at the next morning's tick
    yield day(d0 + timedelta(days=18))
    if comments == 0:
        engine.fire(oid, "close_without_comments", OFFICE)
        return
    suggestions = max(1, comments // 2)
    engine.fire(
        oid,
        "summarise",
        SPECIAL,
        {
            "summary": f"收到意见{comments}条，归纳建议{suggestions}条",
            "suggestion_count": suggestions,
        },
    )
    yield day(d0 + timedelta(days=25))
    engine.fire(oid, "submit", OFFICE, {"recipients": ["party_committee", "government"]})
    if n % 2 == 0:
        yield day(d0 + timedelta(days=35))
        engine.fire(oid, "record_instruction", OFFICE, {"leader": "市长", "text": "请研究吸收"})
    yield day(d0 + timedelta(days=45))
    engine.fire(oid, "feed_back", OFFICE, {"feedback": "采纳情况已在平台公布"})
    engine.fire(oid, "close", OFFICE)
