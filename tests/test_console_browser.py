"""The console and the public page in a real browser: headless Chromium driven by selenium
against a uvicorn server over a SQLite file. One journey: sign in, find a task in the inbox,
fire it through its generated form, see the timeline grow, see a refusal in the page, open the
board with its report, read the public page, rate a proposal, and be refused a second rating
from the same browser.

Each page's screenshot is saved in ``test-screenshots/`` (git-ignored). Without Chromium the
test is skipped, except with ``CI=true``, where it fails.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from console_support import ORG, STAFF, City, build_city, serving

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SHOTS = Path(__file__).resolve().parent.parent / "test-screenshots"
WAIT_SECONDS = 10
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
]


def _need_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not missing:
        return
    reason = f"{' and '.join(missing)} not installed (apt-get install chromium chromium-driver)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}: the browser tests must run in CI")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def driver() -> Iterator[object]:
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="xieshang-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    browser.implicitly_wait(0)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def city(tmp_path: Path) -> Iterator[City]:
    built = build_city(f"sqlite:///{tmp_path}/console.db")
    yield built
    built.engine.store.close()  # type: ignore[attr-defined]


def test_a_day_at_the_console_and_on_the_public_page(driver: object, city: City) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser: WebDriver = driver  # type: ignore[assignment]
    wait = WebDriverWait(browser, WAIT_SECONDS)
    SHOTS.mkdir(exist_ok=True)

    def shot(name: str) -> None:
        browser.save_screenshot(str(SHOTS / f"{name}.png"))

    def timeline() -> int:
        return len(browser.find_elements(By.CSS_SELECTOR, "#timeline li"))

    with serving(city) as (base, tokens):
        token = tokens.create(STAFF, "browser test")
        browser.get(f"{base}/")
        wait.until(ec.url_to_be(f"{base}/signin"))
        shot("01-signin")
        browser.find_element(By.ID, "token").send_keys(token)
        browser.find_element(By.ID, "signin").click()
        wait.until(ec.url_to_be(f"{base}/"))
        shot("02-inbox")

        # the inbox, filtered by state through htmx, shows the task
        Select(browser.find_element(By.ID, "f-state")).select_by_value("submitted")
        wait.until(ec.url_contains("state=submitted"))
        tasks = browser.find_elements(By.CSS_SELECTOR, "#inbox a.task")
        assert [t.get_attribute("href") for t in tasks] == [
            f"{base}/i/{city.ids[k]}" for k in ("submitted1", "submitted2", "private")
        ]
        tasks[0].click()
        wait.until(ec.presence_of_element_located((By.ID, "form-start_review")))
        assert timeline() == 2
        current = browser.find_element(By.CSS_SELECTOR, ".diagram g.node.current title")
        assert current.get_attribute("textContent") == "submitted"
        shot("03-instance")

        # fire start_review through its generated form: the page reloads with one more row
        form = browser.find_element(By.ID, "form-start_review")
        form.find_element(By.NAME, "preliminary_opinion").send_keys("同意进入审查")
        form.find_element(By.ID, "fire-start_review").click()
        wait.until(ec.presence_of_element_located((By.ID, "form-file")))
        assert timeline() == 3
        assert browser.find_element(By.ID, "state").get_attribute("data-state") == "under_review"
        assert city.engine.get(city.ids["submitted1"]).state == "under_review"
        shot("04-fired")

        # file without its required number: refused inline, in Chinese, nothing changes
        browser.find_element(By.ID, "fire-file").click()
        refusal = wait.until(
            ec.visibility_of_element_located((By.CSS_SELECTOR, "#result-file .refusal"))
        )
        assert "填写的内容有误" in refusal.text and "number" in refusal.text
        assert timeline() == 3 and browser.current_url == f"{base}/i/{city.ids['submitted1']}"
        assert city.engine.get(city.ids["submitted1"]).version == 3
        shot("05-refused")

        # the board loads the year's first report into the page
        browser.get(f"{base}/board")
        title = wait.until(ec.visibility_of_element_located((By.ID, "report-title")))
        assert title.text == "2024年提案审查情况统计"
        shot("06-board")

        # the public page: no sign-in needed, a rating once per browser
        browser.get(f"{base}/public/{ORG}")
        wait.until(ec.presence_of_element_located((By.ID, "q")))
        shot("07-public")
        search = browser.find_element(By.ID, "q")
        search.send_keys("电梯")
        browser.find_element(By.ID, "search").click()
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "article.proposal")) == 1)
        pid = city.ids["replied"]
        card = browser.find_element(By.ID, f"p-{pid}")
        assert "老旧小区加装电梯" in card.text and "SECRET" not in browser.page_source

        def rate_once() -> str:
            card = browser.find_element(By.ID, f"p-{pid}")
            card.find_element(By.CSS_SELECTOR, "input[value=satisfied]").click()
            card.find_element(By.ID, f"rate-{pid}").click()
            answer = wait.until(
                ec.visibility_of_element_located((By.CSS_SELECTOR, f"#rated-{pid} span"))
            )
            return answer.text

        assert "感谢您的评价" in rate_once()
        shot("08-rated")
        browser.execute_script(f"document.getElementById('rated-{pid}').innerHTML = ''")
        assert "本浏览器已评价过这件提案" in rate_once()
        shot("09-rated-again")
