"""The console over HTTP, without a browser: sign-in and its cookie, CSRF on every form,
sign-out and revocation ending a session, the inbox, a fire through the generated form, a
refusal shown in the page, the board and its reports; on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import openpyxl
import pytest
from console_support import MEMBER, OFFICE, STAFF, City, build_city, serving, unit

from xieshang import Actor
from xieshang.adapters.http.auth import SQLTokenStore
from xieshang.adapters.web import ConsoleOptions


@pytest.fixture
def city(sql_url: str) -> Iterator[City]:
    built = build_city(sql_url)
    yield built
    built.engine.store.close()  # type: ignore[attr-defined]


@pytest.fixture
def server(city: City) -> Iterator[tuple[str, SQLTokenStore]]:
    with serving(city) as running:
        yield running


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, html[:500]
    return found.group(1)


OPENED: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().close()


def client_of(base: str, **options: object) -> httpx.Client:
    """A client closed when the test ends."""
    client = httpx.Client(base_url=base, **options)  # type: ignore[arg-type]
    OPENED.append(client)
    return client


def sign_in(base: str, tokens: SQLTokenStore, actor: Actor) -> tuple[httpx.Client, str]:
    """A client signed in as ``actor``, and the session's CSRF secret."""
    client = client_of(base)
    form = client.get("/signin")
    token = tokens.create(actor, "console test")
    done = client.post("/signin", data={"csrf": csrf_of(form.text), "token": token})
    assert done.status_code == 303 and done.headers["location"] == "/"
    return client, csrf_of(client.get("/").text)


def test_without_a_session_every_console_page_sends_to_signin(
    server: tuple[str, SQLTokenStore],
) -> None:
    base, _ = server
    with httpx.Client(base_url=base) as client:
        for path in ("/", "/?all=1", "/i/p00001", "/board", "/board/report/review"):
            r = client.get(path)
            assert (r.status_code, r.headers["location"]) == (303, "/signin"), path


def test_session_cookie_is_httponly_strict_and_not_secure_on_http(
    server: tuple[str, SQLTokenStore],
) -> None:
    base, tokens = server
    with httpx.Client(base_url=base) as client:
        form = client.get("/signin")
        token = tokens.create(STAFF)
        r = client.post("/signin", data={"csrf": csrf_of(form.text), "token": token})
        cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("xs_session="))
        flags = {p.strip().lower() for p in cookie.split(";")[1:]}
        assert flags == {"httponly", "path=/", "samesite=strict"}


def test_signin_refuses_a_bad_token_and_a_missing_csrf(server: tuple[str, SQLTokenStore]) -> None:
    base, tokens = server
    with httpx.Client(base_url=base) as client:
        form = client.get("/signin")
        bad = client.post("/signin", data={"csrf": csrf_of(form.text), "token": "xs_nope"})
        assert bad.status_code == 401 and "令牌无效或已吊销" in bad.text
        assert "xs_session" not in client.cookies
        no_csrf = client.post("/signin", data={"token": tokens.create(STAFF)})
        assert no_csrf.status_code == 403 and "CSRF" in no_csrf.text
        assert "xs_session" not in client.cookies


def test_a_post_without_the_sessions_csrf_is_refused_and_changes_nothing(
    server: tuple[str, SQLTokenStore], city: City
) -> None:
    base, tokens = server
    client, csrf = sign_in(base, tokens, STAFF)
    pid = city.ids["submitted1"]
    for sent in ({}, {"csrf": "forged"}, {"csrf": csrf + "x"}):
        r = client.post(f"/i/{pid}/fire", data={"trigger": "start_review", **sent})
        assert r.status_code == 403 and "CSRF" in r.text
    assert city.engine.get(pid).state == "submitted"
    assert city.engine.get(pid).version == 2
    r = client.post("/signout", data={"csrf": "forged"})
    assert r.status_code == 403
    assert client.get("/").status_code == 200  # still signed in


def test_signout_ends_the_session_for_every_later_request(
    server: tuple[str, SQLTokenStore],
) -> None:
    base, tokens = server
    client, csrf = sign_in(base, tokens, STAFF)
    kept = client.cookies["xs_session"]
    r = client.post("/signout", data={"csrf": csrf})
    assert (r.status_code, r.headers["location"]) == (303, "/signin")
    replay = client_of(base, cookies={"xs_session": kept})
    assert replay.get("/").headers["location"] == "/signin"


def test_revoking_the_token_ends_its_sessions(server: tuple[str, SQLTokenStore]) -> None:
    base, tokens = server
    client = client_of(base)
    form = client.get("/signin")
    token = tokens.create(STAFF)
    client.post("/signin", data={"csrf": csrf_of(form.text), "token": token})
    assert client.get("/", follow_redirects=False).status_code == 200
    assert tokens.revoke(token) is True
    r = client.get("/", follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/signin")


def test_inbox_lists_what_the_actor_may_act_on_grouped_by_workflow(
    server: tuple[str, SQLTokenStore], city: City
) -> None:
    base, tokens = server
    client, _ = sign_in(base, tokens, STAFF)
    html = client.get("/").text
    listed = re.findall(r'<tr class="[^"]*" data-id="([^"]+)"', html)
    assert listed == [city.ids["submitted1"], city.ids["submitted2"], city.ids["private"]]
    assert html.count('<section class="group">') == 1 and "提案办理" in html
    only = client.get("/", params={"state": "under_review"}, headers={"HX-Request": "true"})
    assert "<html" not in only.text and "inbox-empty" in only.text
    water, _ = sign_in(base, tokens, unit("water"))
    rows = re.findall(r'data-id="([^"]+)"', water.get("/").text)
    # the proposal (another extension may be asked) and its handling by the unit (notified)
    assert rows == [city.ids["extended"], city.engine.children(city.ids["extended"])[0].id]


def test_inbox_pages_by_keyset(city: City) -> None:
    with serving(city, ConsoleOptions(page_size=1)) as (base, tokens):
        paged, _ = sign_in(base, tokens, STAFF)
        first = paged.get("/").text
        assert re.findall(r'data-id="([^"]+)"', first) == [city.ids["submitted1"]]
        nxt = re.search(r'id="next-page" hx-get="([^"]+)"', first)
        assert nxt is not None
        second = paged.get(nxt.group(1).replace("&amp;", "&")).text
        assert re.findall(r'data-id="([^"]+)"', second) == [city.ids["submitted2"]]
        third = re.search(r'id="next-page" hx-get="([^"]+)"', second)
        assert third is not None
        last = paged.get(third.group(1).replace("&amp;", "&")).text
        assert re.findall(r'data-id="([^"]+)"', last) == [city.ids["private"]]


def test_firing_through_the_generated_form_grows_the_timeline(
    server: tuple[str, SQLTokenStore], city: City
) -> None:
    base, tokens = server
    client, csrf = sign_in(base, tokens, STAFF)
    pid = city.ids["submitted1"]
    page = client.get(f"/i/{pid}").text
    assert 'id="form-start_review"' in page and 'id="form-return_for_revision"' in page
    assert page.count('data-seq="') == 2
    r = client.post(
        f"/i/{pid}/fire",
        data={
            "csrf": csrf,
            "trigger": "start_review",
            "preliminary_opinion": "同意立案",
            "nonce": "n1",
        },
        headers={"HX-Request": "true"},
    )
    assert (r.status_code, r.headers["HX-Redirect"]) == (204, f"/i/{pid}")
    again = client.post(
        f"/i/{pid}/fire",
        data={
            "csrf": csrf,
            "trigger": "start_review",
            "preliminary_opinion": "同意立案",
            "nonce": "n1",
        },
        headers={"HX-Request": "true"},
    )
    assert again.status_code == 204  # the same form sent twice steps once
    instance = city.engine.get(pid)
    assert (instance.state, instance.version) == ("under_review", 3)
    page = client.get(f"/i/{pid}").text
    assert page.count('data-seq="') == 3 and 'data-state="under_review"' in page
    assert 'id="form-file"' in page and '<b class="req" title="required">*</b>' in page


def test_a_refusal_is_shown_in_the_page_and_changes_nothing(
    server: tuple[str, SQLTokenStore], city: City
) -> None:
    base, tokens = server
    client, csrf = sign_in(base, tokens, STAFF)
    pid = city.ids["submitted2"]
    r = client.post(
        f"/i/{pid}/fire",
        data={"csrf": csrf, "trigger": "return_for_revision", "reason": ""},
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 200 and "<html" not in r.text
    assert 'data-code="invalid-payload"' in r.text and "填写的内容有误" in r.text
    assert "reason: required" in r.text
    plain = client.post(f"/i/{pid}/fire", data={"csrf": csrf, "trigger": "file"})
    assert plain.status_code == 422 and 'data-code="transition-not-allowed"' in plain.text
    assert "当前状态下不能执行此操作" in plain.text
    member, member_csrf = sign_in(base, tokens, MEMBER)
    denied = member.post(
        f"/i/{pid}/fire",
        data={"csrf": member_csrf, "trigger": "start_review"},
        headers={"HX-Request": "true"},
    )
    assert 'data-code="forbidden"' in denied.text and "无权执行此操作" in denied.text
    stale = client.post(
        f"/i/{pid}/fire",
        data={"csrf": csrf, "trigger": "start_review", "version": "1"},
        headers={"HX-Request": "true"},
    )  # a form read before the proposal was submitted
    assert 'data-code="concurrency-conflict"' in stale.text and "已被他人先行处理" in stale.text
    assert city.engine.get(pid).version == 2


def test_an_instance_the_actor_may_not_read_is_not_found(
    server: tuple[str, SQLTokenStore], city: City
) -> None:
    base, tokens = server
    client, csrf = sign_in(base, tokens, STAFF)
    for pid in (city.ids["draft"], "no-such-id"):
        assert client.get(f"/i/{pid}").status_code == 404
        r = client.post(f"/i/{pid}/fire", data={"csrf": csrf, "trigger": "submit"})
        assert r.status_code == 404
    assert "SECRET-DRAFT-TITLE" not in client.get(f"/i/{city.ids['draft']}").text


def test_internal_rows_show_only_to_those_allowed(
    server: tuple[str, SQLTokenStore], city: City
) -> None:
    base, tokens = server
    pid = city.ids["extended"]
    staff, _ = sign_in(base, tokens, STAFF)
    member, _ = sign_in(base, tokens, MEMBER)
    seen = staff.get(f"/i/{pid}").text
    assert "不同意延期SECRET-DENIED" in seen and seen.count('class="internal"') == 2
    mine = member.get(f"/i/{pid}").text
    assert mine.count('data-seq="') == 5 and "SECRET-DENIED" not in mine
    assert "SECRET-REASON-5" not in mine


def test_board_counts_overdue_and_due_soon_and_serves_the_reports(
    server: tuple[str, SQLTokenStore], city: City
) -> None:
    base, tokens = server
    city.engine.clock.set(city.engine.clock.now().replace(month=6, day=1))  # type: ignore[attr-defined]
    client, _ = sign_in(base, tokens, OFFICE)
    board = client.get("/board").text
    assert re.search(r'id="total-overdue">0<', board)
    assert re.search(r'id="total-due-soon">1<', board)  # due 2024-06-05, within 7 days
    assert "市水务局" in board or "water" in board
    rep = client.get("/board/report/review", params={"year": 2024}).text
    assert "2024年" in rep and "<table" in rep
    xlsx = client.get("/board/report/public_ratings.xlsx", params={"year": 2024})
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert client.get("/board/report/nonsense").status_code == 404


def test_the_xlsx_download_is_the_reports_workbook(
    server: tuple[str, SQLTokenStore], tmp_path_factory: pytest.TempPathFactory
) -> None:
    base, tokens = server
    client, _ = sign_in(base, tokens, STAFF)
    r = client.get("/board/report/handling.xlsx", params={"year": 2024})
    path = tmp_path_factory.mktemp("xlsx") / "handling.xlsx"
    path.write_bytes(r.content)
    book = openpyxl.load_workbook(path)
    assert "attachment" in r.headers["content-disposition"]
    assert book.sheetnames[0]
