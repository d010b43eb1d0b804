"""A small city for the console and public page tests: proposals in every stage the pages show,
some not public, some with internal rows, and a server over it.

The registry is the bundled one with two proposal steps made internal (``start_review`` and
``deny_extension``): no bundled step is internal, and the public page must hide such rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from xieshang import Actor, Engine, FixedClock, Registry
from xieshang.adapters.http import create_app
from xieshang.adapters.http.auth import SQLTokenStore
from xieshang.adapters.http.testing import serve_in_thread
from xieshang.adapters.sql import open_store
from xieshang.adapters.web import ConsoleOptions, RatingLimit
from xieshang.workflows import workflow_files

CN = timezone(timedelta(hours=8))
ORG = "demo_city_cppcc"
MEMBER = Actor.of("member-wang", "member", org=ORG)
OTHER_MEMBER = Actor.of("member-li", "member", org=ORG)
STAFF = Actor.of("committee-zhao", "proposal_committee", org=ORG)
OFFICE = Actor.of("office-qian", "supervision_office", org=ORG)
INTERNAL_STEPS = ("start_review", "deny_extension")


def unit(name: str) -> Actor:
    return Actor.of(f"staff-{name}", "handling_unit", org=ORG, unit=name)


def registry() -> Registry:
    """The bundled workflows, the proposal's :data:`INTERNAL_STEPS` marked internal."""
    texts = []
    for f in workflow_files():
        text = f.read_text(encoding="utf-8")
        if f.name == "proposal.yaml":
            for trigger in INTERNAL_STEPS:
                text, n = re.subn(
                    rf"(\n  - trigger: {trigger}\n)", r"\1    visibility: internal\n", text
                )
                assert n == 1, trigger
        texts.append((str(f), text))
    return Registry.from_texts(texts)


@dataclass
class City:
    """The database, its engine, and the proposals by what the tests do with them."""

    url: str
    engine: Engine
    ids: dict[str, str] = field(default_factory=dict)


def _reply(engine: Engine, pid: str, name: str, reply_class: str) -> None:
    cid = engine.children(pid)[0].id
    who = unit(name)
    engine.fire(cid, "acknowledge", who, {"contact_person": "联系人"})
    engine.fire(cid, "contact_proposer", who, {"mode": "face_to_face"})
    engine.fire(
        cid,
        "draft_reply",
        who,
        {"reply_class": reply_class, "reply_text": "内部答复函正文SECRET-REPLY", "signer": "局长"},
    )
    engine.fire(cid, "submit_reply", who)
    engine.fire(cid, "approve_reply", OFFICE)


def _to_assigned(engine: Engine, n: int, title: str, unit_name: str, **start: Any) -> str:
    data = {"title": title, "first_proposer": MEMBER.id, "body": f"正文SECRET-BODY-{n}", **start}
    pid = engine.start("proposal", data, MEMBER).id
    engine.fire(
        pid,
        "submit",
        MEMBER,
        {"category": "society", "suggested_units": [f"SECRET-SUGGESTED-{n}"]},
    )
    engine.fire(
        pid,
        "start_review",
        STAFF,
        {"preliminary_opinion": f"初审意见SECRET-OPINION-{n}"},
        reason=f"内部理由SECRET-REASON-{n}",
    )
    engine.fire(pid, "file", STAFF, {"number": f"2024-{n:03d}"})
    engine.fire(pid, "assign", OFFICE, {"mode": "sole", "units": [unit_name]})
    return pid


def build_city(url: str, reg: Registry | None = None) -> City:
    """Proposals: two submitted (the committee's inbox), one replied (rateable), one closed
    (satisfied), one assigned with a denied extension (an internal row), one not public, one
    draft; every non-public value holds ``SECRET``."""
    clock = FixedClock(datetime(2024, 3, 4, 9, tzinfo=CN))
    counter = iter(range(1, 10**6))
    engine = Engine(
        open_store(url, synchronous="NORMAL"),
        reg or registry(),
        clock,
        ids=lambda: f"p{next(counter):05d}",
    )
    city = City(url, engine)
    for n in (1, 2):
        pid = engine.start(
            "proposal",
            {"title": f"待审提案{n}", "first_proposer": MEMBER.id, "body": f"SECRET-PENDING-{n}"},
            MEMBER,
        ).id
        engine.fire(pid, "submit", MEMBER, {"category": "economy"})
        city.ids[f"submitted{n}"] = pid
    replied = _to_assigned(engine, 3, "老旧小区加装电梯", "housing")
    _reply(engine, replied, "housing", "A")
    city.ids["replied"] = replied
    closed = _to_assigned(engine, 4, "缓解停车难", "transport")
    _reply(engine, closed, "transport", "B")
    engine.fire(closed, "evaluate", MEMBER, {"satisfaction": "satisfied"})
    city.ids["closed"] = closed
    extended = _to_assigned(engine, 5, "雨污分流改造", "water")
    engine.fire(
        extended,
        "request_extension",
        unit("water"),
        {"new_due": "2024-08-30"},
        reason="延期理由SECRET-EXTENSION",
    )
    engine.fire(extended, "deny_extension", OFFICE, reason="不同意延期SECRET-DENIED")
    city.ids["extended"] = extended
    private = engine.start(
        "proposal",
        {"title": "SECRET-PRIVATE-TITLE", "first_proposer": MEMBER.id},
        MEMBER,
    ).id
    engine.fire(
        private,
        "submit",
        MEMBER,
        {"category": "politics", "is_public": False, "non_public_reason": "SECRET-WHY-NOT"},
    )
    city.ids["private"] = private
    draft = engine.start(
        "proposal", {"title": "SECRET-DRAFT-TITLE", "first_proposer": OTHER_MEMBER.id}, OTHER_MEMBER
    ).id
    city.ids["draft"] = draft
    return city


@contextmanager
def serving(
    city: City, options: ConsoleOptions | None = None
) -> Iterator[tuple[str, SQLTokenStore]]:
    """A uvicorn server over ``city`` on loopback; yields its URL and token store."""
    tokens = SQLTokenStore(city.url, create=False, cache_seconds=0)
    app = create_app(
        city.engine, tokens, console=options or ConsoleOptions(rating_limit=RatingLimit(count=3))
    )
    try:
        with serve_in_thread(app) as base:
            yield base, tokens
    finally:
        app.state.console.close()
        tokens.close()
