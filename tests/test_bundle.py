"""An auditor's bundle verifies offline, and any change to what it holds is found."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
from store_contract import propose, to_filed

from xieshang import Engine, FixedClock, Registry
from xieshang.adapters.bundle import BundleError, export_bundle, verify_bundle
from xieshang.adapters.checkpoints import (
    generate_key,
    load_private_key,
    make_checkpoint,
    write_checkpoint,
)
from xieshang.adapters.sql import open_store


@pytest.fixture
def engine(sql_url: str, registry: Registry, clock: FixedClock) -> Iterator[Engine]:
    with open_store(sql_url) as store:
        yield Engine(store, registry, clock)


@pytest.fixture
def bundle(engine: Engine, tmp_path: Path) -> Path:
    """Two filed proposals of org gy, a checkpoint, and their bundle for 2024."""
    for title in ("甲", "乙"):
        to_filed(engine, propose(engine, title).id)
    key = tmp_path / "k"
    generate_key(key)
    cp = tmp_path / "cp.json"
    write_checkpoint(make_checkpoint(engine.store, load_private_key(key), engine.clock.now()), cp)
    out = tmp_path / "bundle.zip"
    manifest = export_bundle(
        engine.store, "gy", date(2024, 1, 1), date(2024, 12, 31), out, checkpoints=[cp],
        now=engine.clock.now(),
    )  # fmt: skip
    assert manifest["instances"] == 2 and manifest["history_rows"] == 8
    return out


def rewrite(path: Path, change: Callable[[dict[str, bytes]], None], *, manifest: bool) -> Path:
    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    change(files)
    if manifest:
        m = json.loads(files["manifest.json"])
        m["files"] = {
            n: hashlib.sha256(d).hexdigest() for n, d in files.items() if n != "manifest.json"
        }
        files["manifest.json"] = json.dumps(m).encode()
    out = path.with_name("altered.zip")
    with zipfile.ZipFile(out, "w") as z:
        for n, d in files.items():
            z.writestr(n, d)
    return out


def test_a_bundle_verifies_with_no_database(bundle: Path, tmp_path: Path) -> None:
    """In a fresh process with no database configured, verify-bundle passes, held to the
    checkpoint inside it, and creates no database file."""
    work = tmp_path / "auditor"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("XIESHANG_")}
    done = subprocess.run(
        [sys.executable, "-m", "xieshang.adapters.cli", "audit", "verify-bundle", str(bundle),
         "--public-key", str(tmp_path / "k.pub"), "--json"],
        cwd=work, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["ok"], result["instances"], result["checkpoints"]) == (True, 2, 1)
    assert list(work.iterdir()) == []


def test_a_changed_row_is_found_even_with_the_manifest_recomputed(
    bundle: Path, tmp_path: Path
) -> None:
    """Editing a history row and recomputing the manifest is 'changed' at that row."""

    def change(files: dict[str, bytes]) -> None:
        lines = files["history.jsonl"].decode().splitlines()
        row = json.loads(lines[1])
        row["reason"] = "改过"
        lines[1] = json.dumps(row, ensure_ascii=False)
        files["history.jsonl"] = ("\n".join(lines) + "\n").encode()

    result = verify_bundle(rewrite(bundle, change, manifest=True), tmp_path / "k.pub")
    assert [(p["seq"], p["kind"]) for p in result["problems"]] == [(2, "changed")]


def test_a_file_not_matching_the_manifest_is_found(bundle: Path, tmp_path: Path) -> None:
    """Any byte changed without the manifest is 'bundle-altered', naming the file."""

    def change(files: dict[str, bytes]) -> None:
        files["ledger.jsonl"] = files["ledger.jsonl"].replace(b'"seq":1', b'"seq":9', 1)

    result = verify_bundle(rewrite(bundle, change, manifest=False), tmp_path / "k.pub")
    assert not result["ok"]
    assert [p["kind"] for p in result["problems"]] == ["bundle-altered"]
    assert "ledger.jsonl" in result["problems"][0]["message"]


def test_a_loosened_definition_is_found(bundle: Path, tmp_path: Path) -> None:
    """A definition body edited to allow another role no longer matches its hash."""

    def change(files: dict[str, bytes]) -> None:
        defs = json.loads(files["definitions.json"])
        for h, body in defs.items():
            defs[h] = body.replace('"proposal_committee"', '"member"', 1)
        files["definitions.json"] = json.dumps(defs).encode()

    result = verify_bundle(rewrite(bundle, change, manifest=True), tmp_path / "k.pub")
    assert "definition-altered" in [p["kind"] for p in result["problems"]]


def test_a_bundle_with_checkpoints_needs_the_public_key(bundle: Path) -> None:
    """Checkpoints are not taken on trust: without the key, verify-bundle refuses."""
    with pytest.raises(BundleError, match="--public-key"):
        verify_bundle(bundle)


def test_a_file_that_is_not_a_bundle_is_refused(tmp_path: Path) -> None:
    """Not a zip: a BundleError naming the file."""
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(BundleError, match=r"junk\.zip"):
        verify_bundle(junk)
