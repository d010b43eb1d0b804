"""An auditor's bundle: one org's instances of a period, verifiable offline with the package alone.

``xieshang audit export --org ORG --from DATE --to DATE -o bundle.zip`` writes a zip of:
``instances.jsonl`` (the instance rows), ``history.jsonl`` (all their history rows),
``events.jsonl`` (the events those rows announced),
``ledger.jsonl`` (the whole ledger up to its head: positions and hashes only, no content of
other orgs), ``definitions.json`` (the workflow definitions the instances are pinned to), the
checkpoints given, and ``manifest.json`` with the SHA-256 of each file.

``xieshang audit verify-bundle bundle.zip --public-key KEY.pub`` needs no database: it checks
the manifest, loads the bundle into an in-memory store, and runs the same verify as a live
deployment (chains, replays, the ledger for the bundle's instances, the checkpoints).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from xieshang import (
    Definition,
    Engine,
    EventRecord,
    HistoryEntry,
    Instance,
    PageCursor,
    Query,
    Registry,
    Store,
    XieshangError,
)
from xieshang.shared import (
    CHINA_TZ,
    LedgerEntry,
    canonical_json,
    compile_definition,
    iso,
    verify_ledger,
)

from .checkpoints import load_public_key, read_checkpoint, write_whole

__all__ = ["BUNDLE_FORMAT", "BundleError", "export_bundle", "verify_bundle"]

BUNDLE_FORMAT = "xieshang-audit-bundle/1"


class BundleError(XieshangError):
    """A bundle cannot be read: not a zip, a file missing, or a file not the one the manifest
    names."""

    code = "bundle-invalid"


def _instance_record(i: Instance) -> dict[str, Any]:
    return {
        **i.to_dict(),
        "head_hash": i.head_hash,
        "children_version": i.children_version,
        "due_basis": i.due_basis,
    }


def _instance(r: dict[str, Any]) -> Instance:
    def moment(text: str | None) -> datetime | None:
        return datetime.fromisoformat(text) if text else None

    return Instance(
        id=r["id"],
        workflow=r["workflow"],
        workflow_version=r["workflow_version"],
        definition_hash=r["definition_hash"],
        org=r["org"],
        state=r["state"],
        data=r["data"],
        version=r["version"],
        created_at=datetime.fromisoformat(r["created_at"]),
        updated_at=datetime.fromisoformat(r["updated_at"]),
        entered_at=datetime.fromisoformat(r["entered_at"]),
        final=r["final"],
        due_at=moment(r["due_at"]),
        overdue=r["overdue"],
        parent_id=r["parent_id"],
        unit=r["unit"],
        head_hash=r["head_hash"],
        children_version=r["children_version"],
        due_basis=r.get("due_basis"),
        suspended_at=moment(r.get("suspended_at")),
    )


def _event_record(e: EventRecord) -> dict[str, Any]:
    return {
        "id": e.id,
        "instance_id": e.instance_id,
        "seq": e.seq,
        "type": e.type,
        "org": e.org,
        "body": e.body,
    }


def _jsonl(rows: Iterable[dict[str, Any]]) -> bytes:
    return "".join(canonical_json(r) + "\n" for r in rows).encode()


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=CHINA_TZ)


def export_bundle(
    store: Store,
    org: str,
    start: date,
    end: date,
    output: Path,
    *,
    checkpoints: Iterable[Path] = (),
    now: datetime,
) -> dict[str, Any]:
    """Write the bundle of ``org``'s instances created from ``start`` to ``end`` (inclusive,
    China time) with their children; returns the manifest.

    Raises:
        BundleError: ``end`` is before ``start``.
    """
    if end < start:
        raise BundleError(f"--to {end} is before --from {start}", start=str(start), end=str(end))
    low, high = iso(_day_start(start)), iso(_day_start(end + timedelta(days=1)))
    chosen: dict[str, Instance] = {}
    after: PageCursor | None = None
    while True:
        page = store.query(Query(org=org, limit=500, after=after))
        if not page:
            break
        for i in page:
            if low <= iso(i.created_at) < high and (i.parent_id is None or i.parent_id in chosen):
                chosen[i.id] = i
        after = PageCursor.of(page[-1])
    history = [row for iid in chosen for row in store.history(iid)]
    # every definition a row names: a migrated instance replays on the one it started on too
    named = sorted({r.definition_hash for r in history})
    definitions = {h: store.load_definition(h) for h in named}
    files: dict[str, bytes] = {
        "instances.jsonl": _jsonl(_instance_record(i) for i in chosen.values()),
        "history.jsonl": _jsonl(r.to_dict() for r in history),
        "events.jsonl": _jsonl(_event_record(e) for iid in chosen for e in store.outbox(iid)),
        "ledger.jsonl": _jsonl(e.to_dict() for e in store.ledger()),
        "definitions.json": canonical_json(definitions).encode(),
    }
    for cp in checkpoints:
        files[f"checkpoints/{cp.name}"] = cp.read_bytes()
    manifest = {
        "format": BUNDLE_FORMAT,
        "org": org,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "created_at": iso(now),
        "instances": len(chosen),
        "history_rows": len(history),
        "ledger_head": list(store.ledger_head()),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in sorted(files.items()):
            z.writestr(name, data)
        z.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2))
    write_whole(output, buffer.getvalue())
    return manifest


def _read_bundle(path: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    try:
        with zipfile.ZipFile(path) as z:
            files = {name: z.read(name) for name in z.namelist()}
    except (OSError, zipfile.BadZipFile) as e:
        raise BundleError(f"{str(path)!r} is not a readable bundle: {e}", file=str(path)) from e
    try:
        manifest = json.loads(files.pop("manifest.json"))
    except (KeyError, ValueError) as e:
        raise BundleError(f"{str(path)!r} has no readable manifest.json") from e
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{str(path)!r}: unknown bundle format {manifest.get('format')!r}")
    return manifest, files


def _altered(message: str) -> dict[str, Any]:
    return {
        "instance_id": None,
        "seq": None,
        "position": None,
        "kind": "bundle-altered",
        "message": message,
    }


def verify_bundle(path: Path, public_key: Path | None = None) -> dict[str, Any]:
    """Verify a bundle with no database: the manifest, every instance's chain and replay, the
    ledger for the bundle's rows, and the checkpoints it holds (with ``public_key``).

    Returns:
        ``{"ok", "instances", "checkpoints", "problems"}``; a problem names the instance, row
        or ledger position and its kind, like ``audit verify``.

    Raises:
        BundleError: the bundle cannot be read.
        CheckpointError: a checkpoint's signature does not verify.
    """
    from xieshang.adapters.memory import MemoryStore

    manifest, files = _read_bundle(path)
    problems: list[dict[str, Any]] = []
    for name, digest in manifest.get("files", {}).items():
        data = files.get(name)
        if data is None or hashlib.sha256(data).hexdigest() != digest:
            problems.append(_altered(f"{name} is missing or not the file the manifest names"))
    for name in sorted(set(files) - set(manifest.get("files", {}))):
        problems.append(_altered(f"{name} is not in the manifest"))
    if problems:
        return {"ok": False, "instances": 0, "checkpoints": 0, "problems": problems}

    def lines(name: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in files[name].decode().splitlines() if line]

    instances = [_instance(r) for r in lines("instances.jsonl")]
    rows = [HistoryEntry(**r) for r in lines("history.jsonl")]
    events = [EventRecord(**r) for r in lines("events.jsonl")] if "events.jsonl" in files else []
    ledger = [LedgerEntry(**r) for r in lines("ledger.jsonl")]
    definitions: dict[str, str] = json.loads(files["definitions.json"])
    store = MemoryStore()
    store.restore(instances, rows, definitions, events)
    statements = []
    cps = sorted(n for n in files if n.startswith("checkpoints/"))
    if cps:
        if public_key is None:
            raise BundleError("the bundle holds checkpoints: pass --public-key to check them")
        key = load_public_key(public_key)
        for name in cps:
            tmp = path.with_name(f".{path.name}.{Path(name).name}")
            try:
                tmp.write_bytes(files[name])
                statements.append(read_checkpoint(tmp, key))
            finally:
                tmp.unlink(missing_ok=True)
    registry = Registry()
    for content_hash, body in sorted(definitions.items()):
        try:
            wf = compile_definition(Definition.model_validate(json.loads(body)))
        except (XieshangError, ValueError) as e:
            problems.append({**_altered(f"definition {content_hash} cannot be read: {e}"),
                             "kind": "definition-altered"})  # fmt: skip
            continue
        if wf.hash != content_hash:
            problems.append({**_altered(f"definition {content_hash} is not the body it names"),
                             "kind": "definition-altered"})  # fmt: skip
            continue
        registry.add(wf)
    engine = Engine(store, registry)
    ids = {i.id for i in instances}
    for iid in sorted(ids):
        found = engine._verify_one(iid)
        if found is not None:
            problems.append({**found, "position": None})
    reported = {p["instance_id"] for p in problems}
    findings = verify_ledger(
        ledger,
        store.row_hashes(),
        store.instance_orgs(),
        checkpoints=statements,
        scope=ids,
    )
    problems += [f for f in findings if f["instance_id"] not in reported]
    return {
        "ok": not problems,
        "instances": len(instances),
        "checkpoints": len(statements),
        "problems": problems,
    }
