"""docs/embedding.md runs: its ``python`` blocks, in order, in one namespace (the Redis block
against the test Redis, in a database of its own holding one event, emptied afterwards)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from xieshang.adapters.events import RedisStreamSink

PAGE = Path(__file__).resolve().parent.parent / "docs" / "embedding.md"
REDIS_ENV = "XIESHANG_TEST_REDIS_URL"


@pytest.fixture
def redis_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = os.environ.get(REDIS_ENV)
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {REDIS_ENV} is not set")
        pytest.skip(f"{REDIS_ENV} is not set")
    own = url.rsplit("/", 1)[0] + "/15"
    monkeypatch.setenv("REDIS_URL", own)
    client = redis.Redis.from_url(own)
    client.flushdb()
    event = {"id": "ev-1", "type": "xieshang.instance.started", "data": {"workflow": "proposal"}}
    RedisStreamSink(own, client=client).deliver(event)
    yield own
    client.flushdb()
    client.close()


def test_the_embedding_page_runs(redis_url: str) -> None:
    """Every python block of the page runs, and its assertions hold."""
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 6
    namespace: dict[str, object] = {"__name__": "embedding"}
    for block in blocks:
        exec(compile(block, str(PAGE), "exec"), namespace)
    assert namespace["handled"] == ["ev-1"]
