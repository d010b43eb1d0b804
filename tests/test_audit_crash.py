"""A checkpoint or an auditor's bundle written by a process killed midway: the file is either
the previous whole one or absent, never half-written, and the next writer clears the debris."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from store_contract import propose, to_filed

from xieshang import Engine, FixedClock, Registry
from xieshang.adapters.bundle import verify_bundle
from xieshang.adapters.checkpoints import ENV_FAULT, load_public_key, read_checkpoint
from xieshang.adapters.sql import open_store


def xs(db: Path, *args: str, fault: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != ENV_FAULT}
    if fault:
        env[ENV_FAULT] = "before_replace"
    return subprocess.run(
        [sys.executable, "-m", "xieshang.adapters.cli", "--db", f"sqlite:///{db}", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def db(tmp_path: Path, registry: Registry, clock: FixedClock) -> Path:
    path = tmp_path / "xs.db"
    with open_store(f"sqlite:///{path}") as store:
        engine = Engine(store, registry, clock)
        for title in ("甲", "乙"):
            to_filed(engine, propose(engine, title).id)
    return path


def debris(directory: Path, name: str) -> list[str]:
    return sorted(p.name for p in directory.glob(f".{name}.*"))


def test_a_checkpoint_killed_before_its_rename_leaves_the_previous_one(
    db: Path, tmp_path: Path
) -> None:
    key = tmp_path / "audit.key"
    assert xs(db, "audit", "keygen", "-o", str(key)).returncode == 0
    public = load_public_key(tmp_path / "audit.key.pub")
    cp = tmp_path / "cps" / "cp.json"

    killed = xs(db, "audit", "checkpoint", "--key-file", str(key), "-o", str(cp), fault=True)
    assert killed.returncode == -signal.SIGKILL
    assert not cp.exists() and len(debris(cp.parent, cp.name)) == 1

    assert xs(db, "audit", "checkpoint", "--key-file", str(key), "-o", str(cp)).returncode == 0
    first = cp.read_bytes()
    assert read_checkpoint(cp, public)["position"] == 8
    assert debris(cp.parent, cp.name) == []

    killed = xs(db, "audit", "checkpoint", "--key-file", str(key), "-o", str(cp), fault=True)
    assert killed.returncode == -signal.SIGKILL
    assert cp.read_bytes() == first  # the whole previous checkpoint, still signed
    assert read_checkpoint(cp, public)["position"] == 8


def test_an_export_killed_before_its_rename_leaves_no_bundle(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "bundle.zip"
    span = ["--org", "gy", "--from", "2024-01-01", "--to", "2024-12-31", "-o", str(out)]
    killed = xs(db, "audit", "export", *span, fault=True)
    assert killed.returncode == -signal.SIGKILL
    assert not out.exists() and len(debris(tmp_path, out.name)) == 1

    done = xs(db, "audit", "export", *span)
    assert done.returncode == 0, done.stderr
    assert debris(tmp_path, out.name) == []
    report = verify_bundle(out, None)
    assert report["problems"] == [] and report["instances"] == 2, json.dumps(report)
