"""Threads writing to one SQLite file queue on the process's writer lock of that file: every
command commits once or is refused as a conflict, and no driver error ("database is locked")
escapes; a writer that cannot get the lock in the busy timeout is refused and writes nothing."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest
from store_contract import CHAIR, propose, to_filed

from xieshang import ConcurrencyConflict, Engine, Registry, StoreUnavailable
from xieshang.adapters.sql import open_store
from xieshang.adapters.sql.writer import writer_lock

THREADS = 8
FIRES = 6


def test_threads_over_two_stores_of_one_file_all_commit_or_conflict(
    tmp_path: Path, registry: Registry
) -> None:
    """Each thread fires on its own instance and on one shared instance, half of the threads
    through each of two stores on the same file: own fires all commit (one history row each),
    shared fires commit or raise ConcurrencyConflict, and the histories count exactly that."""
    url = f"sqlite:///{tmp_path / 'writers.db'}"
    with open_store(url) as first, open_store(url) as second:
        engines = [Engine(first, registry), Engine(second, registry)]
        own = [propose(engines[0], f"并发{k}").id for k in range(THREADS)]
        shared = propose(engines[0], "共同").id
        for iid in [*own, shared]:
            to_filed(engines[0], iid)
        outcomes: Counter[str] = Counter()
        leaked: list[BaseException] = []
        count = threading.Lock()
        start = threading.Barrier(THREADS)

        def writer(k: int) -> None:
            engine = engines[k % 2]
            start.wait()
            try:
                for n in range(FIRES):
                    engine.fire(own[k], "flag_key", CHAIR, {"lead_leader": f"t{k}-{n}"})
                    try:
                        version = engine.store.load(shared, fresh=True)
                        assert version is not None
                        engine.fire(
                            shared,
                            "flag_key",
                            CHAIR,
                            {"lead_leader": f"s{k}-{n}"},
                            expected_version=version.version,
                        )
                        kind = "stored"
                    except ConcurrencyConflict:
                        kind = "conflict"
                    with count:
                        outcomes[kind] += 1
            except BaseException as e:  # anything else is the failure this test looks for
                leaked.append(e)

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert leaked == []
        assert outcomes["stored"] + outcomes["conflict"] == THREADS * FIRES
        assert outcomes["stored"] >= 1
        for k, iid in enumerate(own):
            history = engines[1].history(iid)
            assert [e.payload.get("lead_leader") for e in history[4:]] == [
                f"t{k}-{n}" for n in range(FIRES)
            ]
            assert engines[1].get(iid, fresh=True).version == 4 + FIRES
        tags = [e.payload.get("lead_leader") for e in engines[1].history(shared)[4:]]
        assert len(tags) == len(set(tags)) == outcomes["stored"]
        assert engines[1].get(shared, fresh=True).version == 4 + outcomes["stored"]
        assert engines[0].verify(shared) == []


def test_a_writer_that_cannot_get_the_lock_in_time_is_refused_and_writes_nothing(
    tmp_path: Path, registry: Registry
) -> None:
    """While another writer of this process holds the file's lock, a fire waits in the queue
    (not in SQLite) and, past the store's busy timeout, is refused as StoreUnavailable naming
    the lock; once the lock is free, the same fire commits."""
    url = f"sqlite:///{tmp_path / 'held.db'}"
    with open_store(url, busy_timeout_ms=100) as store:
        engine = Engine(store, registry)
        iid = propose(engine).id
        filed = to_filed(engine, iid)
        # the same file by another spelling: the lock is the file's, not the URL's
        other_spelling = str(tmp_path / "." / "held.db")
        with (
            writer_lock(other_spelling, 100),
            pytest.raises(StoreUnavailable) as refused,
        ):
            engine.fire(iid, "flag_key", CHAIR, {"lead_leader": "L"})
        assert "another writer of this process held" in refused.value.message
        assert refused.value.message.endswith("for more than 0.1 s (the busy timeout)")
        assert engine.get(iid, fresh=True).version == filed.version
        assert len(engine.history(iid)) == 4
        after = engine.fire(iid, "flag_key", CHAIR, {"lead_leader": "L"})
        assert after.version == filed.version + 1
