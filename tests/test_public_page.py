"""The public progress page: public fields and public rows only, search, the closed proposals'
satisfaction, and the public's rating (one per browser per proposal, limited per address,
recorded with an outbox event and counted by the ``public_ratings`` report)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from console_support import MEMBER, ORG, City, build_city, serving

from xieshang import Query
from xieshang.adapters.reports import report
from xieshang.adapters.sql import engine_for
from xieshang.adapters.sql.tables import outbox
from xieshang.adapters.web import EVENT_TYPE, ConsoleOptions, RatingLimit

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


@pytest.fixture
def city(sql_url: str) -> Iterator[City]:
    built = build_city(sql_url)
    yield built
    built.engine.store.close()  # type: ignore[attr-defined]


@pytest.fixture
def server(city: City) -> Iterator[str]:
    with serving(city, ConsoleOptions(rating_limit=RatingLimit(count=3))) as (base, _):
        yield base


@pytest.fixture
def browser(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server) as client:
        yield client


def listed(html: str) -> list[str]:
    return re.findall(r'<article class="card proposal" id="p-([^"]+)"', html)


def rate(client: httpx.Client, pid: str, rating: str, htmx: bool = False) -> httpx.Response:
    page = client.get(f"/public/{ORG}")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    return client.post(
        f"/public/{ORG}/rate/{pid}",
        data={"csrf": csrf.group(1), "rating": rating},
        headers={"HX-Request": "true"} if htmx else {},
    )


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def internal_values(city: City) -> set[str]:
    """Every text value the public must not see: the non-public fields of every instance, every
    field of an instance the public may not see, and each internal row's reason, payload and
    actor. Left out: values that are also a public field's value of a public proposal (the same
    proposer), dates (the progress shows when each step happened) and texts under 4 characters."""
    engine = city.engine
    public = engine.query(Query(org=ORG, limit=500)).items
    shown: set[str] = set()
    hidden: set[str] = set()
    from xieshang.adapters.web.public_pages import public_actor

    reader = public_actor(ORG)
    for i in public:
        definition = engine.registry.get(i.workflow).definition
        visible = engine.level(i, reader) > 0 and i.workflow == "proposal"
        for name, value in i.data.items():
            spec = definition.data.get(name)
            target = shown if visible and spec is not None and spec.public else hidden
            target.update(_strings(value))
        for e in engine.history(i.id):
            if e.visibility == "internal" or not visible:
                hidden.update(_strings(e.payload))
                hidden.update(_strings(e.reason))
                hidden.add(str(e.actor.get("id")))
    return {v for v in hidden - shown if len(v) >= 4 and not DATE.match(v)}


def test_the_walk_finds_every_kind_of_internal_value(city: City) -> None:
    values = internal_values(city)
    joined = "\n".join(values)
    for marker in (
        "SECRET-BODY-3",  # a non-public field
        "SECRET-SUGGESTED-3",  # a non-public field set by a public step
        "SECRET-OPINION-3",  # an internal row's payload
        "SECRET-REASON-3",  # an internal row's reason
        "SECRET-DENIED",  # an internal row's reason, on an open proposal
        "SECRET-PRIVATE-TITLE",  # a public field of a proposal that is not public
        "SECRET-WHY-NOT",
        "SECRET-DRAFT-TITLE",  # a draft
        "SECRET-PENDING-1",
        "SECRET-REPLY",  # the handling's data: not a proposal
    ):
        assert marker in joined, marker
    assert "committee-zhao" in values  # the actor of an internal row


def test_nothing_internal_appears_on_any_public_page_or_route(
    city: City, browser: httpx.Client
) -> None:
    values = internal_values(city)
    bodies = [browser.get(f"/public/{ORG}").text]
    bodies.append(browser.get(f"/public/{ORG}", headers={"HX-Request": "true"}).text)
    for v in sorted(values):  # a search for it finds nothing (its echo in the box aside)
        found = browser.get(f"/public/{ORG}", params={"q": v}).text
        assert listed(found) == []
        bodies.append(found.replace(f'value="{v}"', ""))
    bodies.append(rate(browser, city.ids["replied"], "satisfied", htmx=True).text)
    bodies.append(rate(browser, city.ids["replied"], "satisfied").text)
    bodies.append(browser.get(f"/public/{ORG}", params={"q": "电梯"}).text)
    for pid in city.ids.values():
        bodies.append(browser.post(f"/public/{ORG}/rate/{pid}", data={}).text)
    for body in bodies:
        leaked = [v for v in values if v in body]
        assert leaked == []
    with engine_for(city.url)[0].connect() as conn:
        events = [
            r.body
            for r in conn.execute(sa.select(outbox.c.body).where(outbox.c.type == EVENT_TYPE))
        ]
    assert len(events) == 1 and not [v for v in values if v in events[0]]


def test_the_page_lists_public_proposals_with_public_progress(
    city: City, browser: httpx.Client
) -> None:
    html = browser.get(f"/public/{ORG}").text
    ids = city.ids
    assert listed(html) == [
        ids["submitted1"],
        ids["submitted2"],
        ids["replied"],
        ids["closed"],
        ids["extended"],
    ]
    article = html[html.index(f'id="p-{ids["extended"]}"') :]
    progress = re.search(r"办理进度 <small>Progress</small>（(\d+)）", article)
    assert progress is not None and progress.group(1) == "5"  # 7 rows, 2 internal
    closed = html[html.index(f'id="p-{ids["closed"]}"') : html.index(f'id="p-{ids["extended"]}"')]
    assert "提案人满意度" in closed and "<b>满意</b>" in closed
    assert html.count('<form class="rate"') == 2  # the replied and the closed one
    assert "2024-003" in html and "老旧小区加装电梯" in html


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("2024-004", ["closed"]),
        ("电梯", ["replied"]),
        ("市水务局", ["extended"]),
        ("water", ["extended"]),
        ("SECRET", []),
        ("正文", []),
    ],
)
def test_search_by_number_title_and_unit(
    city: City, browser: httpx.Client, q: str, found: list[str]
) -> None:
    html = browser.get(f"/public/{ORG}", params={"q": q}).text
    assert listed(html) == [city.ids[k] for k in found]


def test_one_rating_per_browser_per_proposal_recorded_with_its_event(
    city: City, browser: httpx.Client, server: str
) -> None:
    pid = city.ids["replied"]
    first = rate(browser, pid, "basically_satisfied", htmx=True)
    assert first.status_code == 200 and "感谢您的评价" in first.text
    again = rate(browser, pid, "unsatisfied", htmx=True)
    assert "本浏览器已评价过这件提案" in again.text and 'class="refusal"' in again.text
    plain = rate(browser, pid, "unsatisfied")
    assert plain.status_code == 409
    assert "基本满意 1" in browser.get(f"/public/{ORG}", params={"q": "电梯"}).text
    with httpx.Client(base_url=server) as other:
        assert rate(other, pid, "unsatisfied").status_code == 303
    with engine_for(city.url)[0].connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.instance_id, outbox.c.body).where(outbox.c.type == EVENT_TYPE)
        ).all()
    bodies = [json.loads(r.body) for r in rows]
    assert [r.instance_id for r in rows] == [f"{pid}#public_rating"] * 2
    assert [b["subject"] for b in bodies] == [pid, pid]
    assert city.engine.verify() == []  # no step announced them, and the audit still holds
    assert [b["data"]["rating"] for b in bodies] == ["basically_satisfied", "unsatisfied"]
    assert bodies[0]["data"]["number"] == "2024-003"
    rep = report("public_ratings", city.url, 2024, ORG)
    assert rep.figures == {
        "rated_proposals": 1,
        "ratings": 2,
        "by_rating": {"satisfied": 0, "basically_satisfied": 1, "unsatisfied": 1},
    }
    assert rep.rates["satisfaction_rate"].text == "50.0%"


def test_ratings_are_refused_where_they_do_not_belong(city: City, browser: httpx.Client) -> None:
    assert rate(browser, city.ids["submitted1"], "satisfied").status_code == 404
    assert rate(browser, city.ids["private"], "satisfied").status_code == 404
    assert rate(browser, city.ids["draft"], "satisfied").status_code == 404
    bad = rate(browser, city.ids["replied"], "excellent")
    assert bad.status_code == 422 and "满意、基本满意、不满意" in bad.text
    forged = browser.post(
        f"/public/{ORG}/rate/{city.ids['replied']}", data={"csrf": "x", "rating": "satisfied"}
    )
    assert forged.status_code == 403
    with engine_for(city.url)[0].connect() as conn:
        count = conn.execute(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.type == EVENT_TYPE)
        ).scalar_one()
    assert count == 0


def test_ratings_are_limited_per_client_address(city: City, server: str) -> None:
    codes = []
    for _ in range(2):
        with httpx.Client(base_url=server) as client:  # a fresh browser, the same address
            for key in ("replied", "closed"):
                codes.append(rate(client, city.ids[key], "satisfied").status_code)
    assert codes == [303, 303, 303, 429]
    with httpx.Client(base_url=server) as client:
        limited = rate(client, city.ids["replied"], "satisfied")
    assert limited.status_code == 429 and "评价过于频繁" in limited.text


def test_text_from_proposers_is_escaped(city: City, browser: httpx.Client) -> None:
    pid = city.engine.start(
        "proposal", {"title": "<script>alert(1)</script>", "first_proposer": MEMBER.id}, MEMBER
    ).id
    city.engine.fire(pid, "submit", MEMBER, {"category": "culture"})
    html = browser.get(f"/public/{ORG}", params={"q": "alert"}).text
    assert listed(html) == [pid]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
