"""The HTTP API against its own OpenAPI document: generated requests, a bounded number of cases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from xieshang.adapters.http import MemoryTokenStore, TokenStore, create_app
from xieshang.adapters.http.testing import serve_in_thread
from xieshang.adapters.memory import MemoryStore
from xieshang.ports import Store
from xieshang.records import Actor
from xieshang.runtime import Engine
from xieshang.workflows import bundled

try:
    from xieshang.adapters.http.commands import token_store_for
    from xieshang.adapters.sql.store import open_store

    HAVE_SQL = True
except ImportError:  # pragma: no cover - a checkout without the SQL adapter
    HAVE_SQL = False

# The document does not depend on the store, so it is read from an app over memory; the
# requests go to a real server on a SQLite file.
DOCUMENT = create_app(Engine(MemoryStore(), bundled()), MemoryTokenStore()).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT).exclude(path="/events/stream")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _stores(directory: Path) -> tuple[Store, TokenStore]:
    if not HAVE_SQL:
        return MemoryStore(), MemoryTokenStore()
    url = f"sqlite:///{directory / 'xieshang.db'}"
    return open_store(url), token_store_for(url)


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    store, tokens = _stores(tmp_path_factory.mktemp("schemathesis"))
    engine = Engine(store, bundled())
    token = tokens.create(Actor.parse("root:admin,member,proposal_committee@guiyang"))
    headers = {"Authorization": f"Bearer {token}"}
    with serve_in_thread(create_app(engine, tokens)) as base:
        started = httpx.post(
            f"{base}/instances",
            json={"workflow": "proposal", "data": {"title": "t", "first_proposer": "root"}},
            headers=headers,
        )
        assert started.status_code == 201
        yield base, headers
    for closable in (store, tokens):
        close = getattr(closable, "close", None)
        if callable(close):
            close()


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_answers_every_generated_request_as_documented(
    case: Any, admin: tuple[str, dict[str, str]]
) -> None:
    """No generated request gets a 5xx, and every response matches the documented status,
    content type and schema."""
    base, headers = admin
    case.call_and_validate(base_url=base, headers=headers, checks=CHECKS)
