"""Tokens are looked up in memory for at most CACHE_SECONDS: a revocation is honoured at once by
the app (token store) that made it, and by another app over the same database within that time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from xieshang import Engine, Registry, Usage
from xieshang.adapters.http import create_app
from xieshang.adapters.http.auth import CACHE_SECONDS, SQLTokenStore
from xieshang.adapters.http.commands import token_store_for
from xieshang.adapters.http.testing import serve_in_thread
from xieshang.adapters.sql import open_store
from xieshang.records import Actor


@pytest.fixture
def two_apps(tmp_path: Path, registry: Registry) -> Iterator[tuple[str, str, SQLTokenStore]]:
    """Two apps, each with its own store and token store, over one SQLite file: the base URLs
    and the first app's token store."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with ExitStack() as stack:
        bases = []
        first_tokens = None
        for _ in range(2):
            store = stack.enter_context(open_store(url))
            tokens = token_store_for(url)
            stack.callback(tokens.close)
            first_tokens = first_tokens or tokens
            app = create_app(Engine(store, registry), tokens)
            bases.append(stack.enter_context(serve_in_thread(app)))
        assert first_tokens is not None
        yield bases[0], bases[1], first_tokens


def _get(base: str, token: str) -> httpx.Response:
    return httpx.get(f"{base}/workflows", headers={"Authorization": f"Bearer {token}"})


def test_a_revocation_reaches_the_other_app_within_the_cache_time(
    two_apps: tuple[str, str, SQLTokenStore],
) -> None:
    """Revoked over HTTP through the first app: that app refuses the token on the next request,
    the second app (which had just accepted it) refuses it once CACHE_SECONDS have passed."""
    first, second, tokens = two_apps
    admin = tokens.create(Actor.parse("root:admin@o"))
    token = tokens.create(Actor.parse("m1:member@o"), "phone")
    assert _get(first, token).status_code == 200
    assert _get(second, token).status_code == 200  # now remembered by the second app
    key = next(t.key for t in tokens.list() if t.label == "phone")

    revoked = httpx.delete(f"{first}/tokens/{key}", headers={"Authorization": f"Bearer {admin}"})
    done = time.monotonic()

    assert revoked.status_code == 204
    assert _get(first, token).json()["code"] == "invalid-token"
    time.sleep(max(0.0, done + CACHE_SECONDS - time.monotonic()))
    refused = _get(second, token)
    assert (refused.status_code, refused.json()["code"]) == (401, "invalid-token")
    assert _get(second, admin).status_code == 200  # the other tokens still work


def test_the_revoking_store_forgets_a_remembered_token_at_once(tmp_path: Path) -> None:
    """A token just looked up (so held in memory) is refused by the same store right after it
    revokes it; a token that was never valid is not remembered as valid."""
    url = f"sqlite:///{tmp_path / 'one.db'}"
    store = token_store_for(url)
    try:
        token = store.create(Actor.parse("m1:member@o"))
        assert store.lookup(token) == Actor.parse("m1:member@o")
        assert store.revoke(token)
        assert store.lookup(token) is None
        assert store.lookup("xs_never-issued") is None
    finally:
        store.close()


@pytest.mark.parametrize("seconds", [-0.5, 1.5])
def test_a_cache_time_outside_zero_to_one_second_is_refused(tmp_path: Path, seconds: float) -> None:
    """A revocation must be honoured within CACHE_SECONDS: a longer (or negative) time is
    refused, naming the allowed range."""
    with pytest.raises(Usage) as refused:
        SQLTokenStore(f"sqlite:///{tmp_path / 'x.db'}", cache_seconds=seconds)
    assert refused.value.message == (
        f"cache_seconds must be from 0 to 1, the longest a revocation may wait (got {seconds!r})"
    )
    assert refused.value.details == {"option": "cache_seconds", "allowed": [0, 1.0]}
