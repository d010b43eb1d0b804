"""The HTTP API against its own OpenAPI document: generated requests, a bounded number of cases,
every check schemathesis has (the document promises no more than the API takes, and the API
refuses what the document does not promise)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS as REGISTERED
from schemathesis.checks import load_all_checks

from xieshang.adapters.http import MemoryTokenStore, TokenStore, create_app
from xieshang.adapters.http.testing import serve_in_thread
from xieshang.adapters.memory import MemoryStore
from xieshang.ports import Store
from xieshang.records import Actor
from xieshang.runtime import Engine
from xieshang.workflows import bundled, default_duties

try:
    from xieshang.adapters.http.commands import token_store_for
    from xieshang.adapters.sql.store import open_store

    HAVE_SQL = True
except ImportError:  # pragma: no cover - a checkout without the SQL adapter
    HAVE_SQL = False

# The document does not depend on the store, so it is read from an app over memory; the
# requests go to a real server on a SQLite file.
DUTIES = default_duties()  # so that GET /members/{member}/duties is served and fuzzed too
DOCUMENT = create_app(Engine(MemoryStore(), bundled(), duties=DUTIES), MemoryTokenStore()).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT).exclude(path="/events/stream")
load_all_checks()
CHECKS = list(REGISTERED.get_all())
TOKEN: dict[str, str] = {}
PLACEHOLDER = "Bearer the-admin-token"  # cases are made before the server and its tokens exist


@schema.auth()
class _Bearer:
    """The admin's token, given through schemathesis, so that the requests it makes without
    one (to see them refused) really go without one."""

    def get(self, case: Any, ctx: Any) -> str:
        return PLACEHOLDER

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": data}


def _stores(directory: Path) -> tuple[Store, TokenStore]:
    if not HAVE_SQL:
        return MemoryStore(), MemoryTokenStore()
    url = f"sqlite:///{directory / 'xieshang.db'}"
    return open_store(url), token_store_for(url)


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store, tokens = _stores(tmp_path_factory.mktemp("schemathesis"))
    engine = Engine(store, bundled(), duties=DUTIES)
    token = tokens.create(Actor.parse("root:admin,member,proposal_committee@guiyang"))
    TOKEN["admin"] = token
    headers = {"Authorization": f"Bearer {token}"}
    with serve_in_thread(create_app(engine, tokens)) as base:
        started = httpx.post(
            f"{base}/instances",
            json={"workflow": "proposal", "data": {"title": "t", "first_proposer": "root"}},
            headers=headers,
        )
        assert started.status_code == 201
        yield base
    for closable in (store, tokens):
        close = getattr(closable, "close", None)
        if callable(close):
            close()


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_answers_every_generated_request_as_documented(case: Any, admin: str) -> None:
    """No generated request gets a 5xx; every response matches the documented status, content
    type, headers and schema; a request the document accepts is taken, one it refuses is
    refused; a 405 names the methods allowed."""
    if (case.headers or {}).get("Authorization") == PLACEHOLDER:
        case.headers["Authorization"] = f"Bearer {TOKEN['admin']}"
    case.call_and_validate(base_url=admin, checks=CHECKS)
