"""``GET /reports/{kind}``: the caller's org's report as the CLI's JSON gives it, scoped to the
caller; with ``rollup=true`` the deployment settings' rollup; refusals name what is allowed
(SQLite and PostgreSQL, a real server)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from test_deployment import CONFIG
from test_deployment_rollup import PLAN, filled  # noqa: F401  (the fixture)

from xieshang import Actor, Engine, load_deployment
from xieshang.adapters.http import create_app
from xieshang.adapters.http.commands import token_store_for
from xieshang.adapters.http.testing import serve_in_thread
from xieshang.adapters.reports import report
from xieshang.adapters.sql.store import open_store
from xieshang.workflows import bundled


@pytest.fixture
def served(filled: str) -> Iterator[tuple[str, dict[str, str], str]]:  # noqa: F811
    """A server over the filled database with the settings; a token per actor name."""
    registry = bundled()
    deployment = load_deployment(CONFIG, "deployment.yaml", registry)
    tokens = token_store_for(filled)
    actors = {
        "office": "o1:cppcc_office@gd_cppcc",
        "member": "m9:member@gd_cppcc",
        "city": "o2:cppcc_office@gz_cppcc",
    }
    made = {name: tokens.create(Actor.parse(text)) for name, text in actors.items()}
    with open_store(filled) as store:
        engine = Engine(store, registry, deployment_config=deployment)
        with serve_in_thread(create_app(engine, tokens)) as base:
            yield base, made, filled
    tokens.close()


def get(base: str, token: str, path: str) -> httpx.Response:
    return httpx.get(f"{base}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_a_report_is_the_callers_orgs_as_the_cli_gives_it(
    served: tuple[str, dict[str, str], str],
) -> None:
    """The city's office reads the city's review report: the same JSON as the report function
    gives for that actor; received and filed are the city's own."""
    base, tokens, url = served
    answer = get(base, tokens["city"], "/reports/review?year=2024")
    assert answer.status_code == 200, answer.text
    city = Actor.parse("o2:cppcc_office@gz_cppcc")
    assert answer.json() == report("review", url, 2024, "gz_cppcc", actor=city).to_dict()
    assert answer.json()["figures"]["received"] == PLAN["gz_cppcc"][0]


def test_a_rollup_sums_the_orgs_the_settings_roll_up(
    served: tuple[str, dict[str, str], str],
) -> None:
    """The province's office asks for the rollup: the province and its city summed, the
    district (no rollup: true) named as left out."""
    base, tokens, _ = served
    answer = get(base, tokens["office"], "/reports/review?year=2024&rollup=true")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["rollup"]["orgs"] == ["gd_cppcc", "gz_cppcc"]
    assert list(body["rollup"]["left_out"]) == ["hz_cppcc"]
    assert body["total"]["figures"]["received"] == PLAN["gd_cppcc"][0] + PLAN["gz_cppcc"][0]
    assert body["per_org"]["gz_cppcc"]["figures"]["received"] == PLAN["gz_cppcc"][0]


@pytest.mark.parametrize(
    ("who", "path", "status", "allowed"),
    [
        ("member", "/reports/review?year=2024&rollup=true", 403, ["cppcc_office", "admin"]),
        ("office", "/reports/budget?year=2024", 404, None),
        ("office", "/reports/review?year=20245", 422, None),
    ],
)
def test_refusals_name_what_is_allowed(
    served: tuple[str, dict[str, str], str],
    who: str,
    path: str,
    status: int,
    allowed: list[str] | None,
) -> None:
    """A member may not read a rollup (the settings' report roles are named); an unknown report
    names the reports there are; a year out of range is refused."""
    base, tokens, _ = served
    answer = get(base, tokens[who], path)
    assert answer.status_code == status, answer.text
    body = answer.json()
    if allowed is not None:
        assert body["allowed"] == allowed
    if status == 404:
        assert "review" in body["allowed"] and "duties" in body["allowed"]


def test_a_rollup_on_a_server_without_settings_is_refused(filled: str) -> None:  # noqa: F811
    """With no deployment settings there is nothing to roll up: 422 naming the option; the
    plain report is still served."""
    tokens = token_store_for(filled)
    token = tokens.create(Actor.parse("o1:cppcc_office@gd_cppcc"))
    with (
        open_store(filled) as store,
        serve_in_thread(create_app(Engine(store, bundled()), tokens)) as base,
    ):
        refused = get(base, token, "/reports/review?year=2024&rollup=true")
        plain = get(base, token, "/reports/review?year=2024")
    tokens.close()
    assert refused.status_code == 422 and "deployment settings" in refused.json()["detail"]
    assert plain.status_code == 200 and plain.json()["figures"]["received"] == PLAN["gd_cppcc"][0]


def test_over_the_in_memory_store_the_route_answers_501() -> None:
    """The route is in every server's document; over a store that is not SQL it says why."""
    from xieshang.adapters.http import MemoryTokenStore
    from xieshang.adapters.memory import MemoryStore

    tokens = MemoryTokenStore()
    token = tokens.create(Actor.parse("o1:cppcc_office@gd_cppcc"))
    with serve_in_thread(create_app(Engine(MemoryStore(), bundled()), tokens)) as base:
        answer = get(base, token, "/reports/review?year=2024")
    assert answer.status_code == 501 and answer.json()["code"] == "reports-need-sql"
