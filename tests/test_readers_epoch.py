"""Readers rewritten in place by one process reach the caches of the others within a second.

A store caches each instance's readers with the instance's version. A rebuild of the readers
(after a definition's read rules changed) does not make a version, so it counts a shared
epoch up, and every store looks at the epoch at most once a second before it serves readers
from its cache.
"""

from __future__ import annotations

import time
from pathlib import Path

from xieshang import Actor, Commit, Engine
from xieshang.adapters.sql import open_store
from xieshang.adapters.sql.readers import EPOCH_SECONDS
from xieshang.workflows import bundled

MEMBER = Actor.of("m1", "member", org="gy")


def test_a_rebuild_in_another_process_reaches_this_cache_within_a_second(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'epoch.db'}"
    with open_store(url) as here, open_store(url) as there:
        engine = Engine(here, bundled())
        iid = engine.start("proposal", {"title": "t", "first_proposer": "m1"}, MEMBER).id
        engine.fire(iid, "submit", MEMBER, {"category": "economy"})  # its readers change
        before = here.readers([iid])[iid]
        assert here._cache.readers(iid) == before  # served from this store's cache
        changed = {**before, "user:auditor": 1}
        there.apply(Commit(readers={iid: changed}))  # another process rewrites them in place
        assert there.readers([iid])[iid] == changed
        time.sleep(EPOCH_SECONDS + 0.1)
        assert here.readers([iid])[iid] == changed
        assert engine.get(iid).version == 2  # no version was made


def test_a_step_does_not_count_the_epoch(tmp_path: Path) -> None:
    """Readers written with a new version (a start, a step) leave the epoch alone: caches keep
    what they hold."""
    url = f"sqlite:///{tmp_path / 'steps.db'}"
    with open_store(url) as store:
        engine = Engine(store, bundled())
        iid = engine.start("proposal", {"title": "t", "first_proposer": "m1"}, MEMBER).id
        engine.fire(iid, "submit", MEMBER, {"category": "economy"})
        assert store._read(store._sql.readers_epoch) == [(0,)]
        engine.rebuild_readers(iid)  # nothing to change: nothing written
        assert store._read(store._sql.readers_epoch) == [(0,)]
        store.apply(Commit(readers={iid: {"user:auditor": 1}}))
        assert store._read(store._sql.readers_epoch) == [(1,)]
