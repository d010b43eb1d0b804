"""A relay killed (SIGKILL) between a delivery and its record loses nothing: after a restart the
event is delivered again with the same id. The ``relay`` command stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sink_contract import drive, fresh_pg_database, make_engine

from xieshang.adapters.sql.store import open_store

RELAY = textwrap.dedent("""
    import sys
    from xieshang.adapters.events import EventSettings, JsonLinesSink, Relay
    relay = Relay(sys.argv[1], [JsonLinesSink(sys.argv[2])], EventSettings())
    relay.run_once()
    while relay.pending():
        relay.run_once()
""")

CLI = textwrap.dedent("""
    import typer
    from xieshang.adapters.events import register_cli
    app = typer.Typer()
    @app.callback()
    def root() -> None:
        pass
    register_cli(app)
    app()
""")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XIESHANG_")}
    return {**env, **extra}


def _ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database: a SQLite file, or a new database on the test PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'x.db'}"
    else:
        with fresh_pg_database() as url:
            yield url


def _committed_and_crash(url: str, tmp_path: Path, **env: str) -> tuple[Path, list[str]]:
    out = tmp_path / "events.jsonl"
    with open_store(url) as store:
        drive(make_engine(store), instances=2, notes=2)
        committed = [e.id for e in store.outbox()]
    crashed = subprocess.run(
        [sys.executable, "-c", RELAY, url, str(out)],
        env=_env(XIESHANG_FAULT="after_deliver:3", **env),
        capture_output=True,
        timeout=60,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr.decode()
    assert _ids(out) == committed[:3]
    restarted = subprocess.run(
        [sys.executable, "-c", RELAY, url, str(out)],
        env=_env(**env),
        capture_output=True,
        timeout=60,
    )
    assert restarted.returncode == 0, restarted.stderr.decode()
    return out, committed


def test_relay_killed_after_delivery_redelivers_with_the_same_id_and_loses_nothing(
    db_url: str, tmp_path: Path
) -> None:
    """Killed before recording a delivery, the restarted relay resends it (same id), loses none."""
    out, committed = _committed_and_crash(db_url, tmp_path, XIESHANG_COMMIT_EVERY="1")
    arrived = _ids(out)
    assert arrived == [*committed[:3], committed[2], *committed[3:]]
    assert {k for k, n in Counter(arrived).items() if n > 1} == {committed[2]}


def test_relay_killed_mid_chunk_redelivers_only_unrecorded_events_and_loses_nothing(
    db_url: str, tmp_path: Path
) -> None:
    """Killed mid-chunk, the relay resends only the chunk's unrecorded events; none is lost."""
    out, committed = _committed_and_crash(db_url, tmp_path)
    arrived = _ids(out)
    assert arrived == [*committed[:3], *committed]


def test_relay_command_delivers_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """``relay`` delivers to the configured sink until SIGTERM, then exits 0."""
    url = f"sqlite:///{tmp_path / 'x.db'}"
    out = tmp_path / "events.jsonl"
    with open_store(url) as store:
        drive(make_engine(store), instances=1, notes=1)
        committed = [e.id for e in store.outbox()]
    env = _env(XIESHANG_DATABASE_URL=url, XIESHANG_JSONL_PATH=str(out))
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "relay", "--poll-interval", "0.05"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not out.exists() or len(_ids(out)) < 4):
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err.decode()
    assert "relay: stopped" in err.decode()
    assert _ids(out) == committed


def test_relay_command_without_sinks_exits_2_naming_the_settings(tmp_path: Path) -> None:
    """``relay`` with no sink configured refuses to start and says which variables to set."""
    env = _env(XIESHANG_DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}")
    done = subprocess.run(
        [sys.executable, "-c", CLI, "relay"], env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 2
    assert b"XIESHANG_WEBHOOK_URLS" in done.stderr
