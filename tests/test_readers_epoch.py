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


def _counting(store: object) -> list[str]:
    """The SQL texts ``store`` reads from here on."""
    seen: list[str] = []
    inner = store._read  # type: ignore[attr-defined]

    def read(sql: str, *args: object, **kwargs: object) -> object:
        seen.append(sql)
        return inner(sql, *args, **kwargs)

    store._read = read  # type: ignore[attr-defined]
    return seen


def test_readers_another_process_wrote_are_read_once_then_kept_with_each_step(
    tmp_path: Path,
) -> None:
    """An instance started by another process: the first command reads its readers with the
    version they belong to; the steps of this process keep them; a step of the other process
    (a new version) makes this one read them again, as they are then."""
    url = f"sqlite:///{tmp_path / 'learn.db'}"
    with open_store(url) as here, open_store(url) as there, open_store(url, cache_size=0) as db:
        iid = (
            Engine(there, bundled())
            .start("proposal", {"title": "t", "first_proposer": "m1"}, MEMBER)
            .id
        )
        engine = Engine(here, bundled())
        reads = _counting(here)
        engine.fire(iid, "invite_cosigners", MEMBER, {"co_proposers": ["m2"]})
        engine.fire(iid, "cosign", Actor.of("m2", "member", org="gy"))
        readers_reads = [sql for sql in reads if "readers" in sql and "cache_epochs" not in sql]
        assert len(readers_reads) == 1  # the first step read them; the rest were kept
        assert here._cache.readers(iid) == db.readers([iid])[iid] != {"a:m1": 2}
        Engine(there, bundled()).fire(iid, "submit", MEMBER, {"category": "economy"})
        moved = db.readers([iid])[iid]
        assert here.readers([iid])[iid] != moved  # the cached row is still the older version
        assert engine.get(iid, fresh=True).version == 4
        assert here.readers([iid])[iid] == moved  # its row moved on: read again, as they are
        assert here._cache.readers(iid) == moved
