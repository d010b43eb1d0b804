"""The API's documentation pages work offline: every asset comes from the package."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from xieshang import Engine
from xieshang.adapters.http import create_app
from xieshang.adapters.http.commands import token_store_for
from xieshang.adapters.http.testing import serve_in_thread
from xieshang.adapters.memory import MemoryStore
from xieshang.workflows import bundled


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('docs') / 'tokens.db'}"
    tokens = token_store_for(url)
    app = create_app(Engine(MemoryStore(), bundled()), tokens)
    with serve_in_thread(app) as served:
        yield served
    tokens.close()


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_every_asset_from_the_server(base: str, page: str) -> None:
    """Each page names only same-origin scripts and styles, each is served, and no address
    outside the server appears in the page (an intranet has no CDN)."""
    with httpx.Client(base_url=base, timeout=10) as client:
        html = client.get(page)
        assert html.status_code == 200 and "text/html" in html.headers["content-type"]
        assets = re.findall(r'(?:src|href)="([^"]+)"', html.text)
        assert assets, html.text
        assert not re.search(r"https?://", html.text.replace(base, ""))
        for asset in assets:
            assert asset.startswith("/static/docs/"), asset
            got = client.get(asset)
            assert got.status_code == 200, asset
            assert len(got.content) > 1000 or asset.endswith(".png")


def test_the_vendored_assets_ship_in_the_package() -> None:
    """The scripts are in the installed package, with their licences."""
    from xieshang.adapters.http.docs import STATIC

    for name in (
        "swagger/swagger-ui-bundle.js",
        "swagger/swagger-ui.css",
        "redoc/redoc.standalone.js",
    ):
        assert (STATIC / name).stat().st_size > 10_000, name
    assert (STATIC / "swagger" / "LICENSE").exists()
    assert Path(STATIC / "redoc" / "VERSION").read_text().startswith("redoc ")
