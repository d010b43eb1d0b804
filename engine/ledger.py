"""The store-wide ledger: one gap-free, hash-chained sequence of every history row.

Each committed history row also appends a ledger entry (position, instance, seq, org, the row's
hash, the previous entry's hash) in the same transaction. The per-instance chains prove that no
row of an instance was changed or reordered; the ledger proves that no row — or whole instance —
was removed, inserted or moved between orgs, and a signed checkpoint of its head (kept outside
the database) proves that even a writer who recomputed every hash changed nothing at or before
it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .jsontext import canonical_json, json_text
from .records import Commit, HistoryEntry

__all__ = [
    "GENESIS",
    "LedgerEntry",
    "append_entries",
    "append_rows",
    "entry_hash",
    "entry_of",
    "entry_orgs",
    "verify_ledger",
]

GENESIS = ""  # the previous hash of position 1


# not frozen, for the cost of building it on every step (see xieshang.records.HistoryEntry)
@dataclass(slots=True, unsafe_hash=True)
class LedgerEntry:
    """One position of the ledger: which history row it holds, chained to the position before."""

    position: int
    instance_id: str
    seq: int
    org: str
    row_hash: str
    prev_hash: str
    hash: str = ""

    def body(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "instance_id": self.instance_id,
            "seq": self.seq,
            "org": self.org,
            "row_hash": self.row_hash,
            "prev_hash": self.prev_hash,
        }

    def compute_hash(self) -> str:
        return entry_hash(
            self.position, self.instance_id, self.seq, self.org, self.row_hash, self.prev_hash
        )

    def canonical(self) -> str:
        """The canonical JSON of :meth:`body`."""
        return _canonical(
            self.position, self.instance_id, self.seq, self.org, self.row_hash, self.prev_hash
        )

    def sealed(self) -> LedgerEntry:
        object.__setattr__(self, "hash", self.compute_hash())
        return self

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "hash": self.hash}


def entry_hash(
    position: int, instance_id: str, seq: int, org: str, row_hash: str, prev_hash: str
) -> str:
    """The hash of the ledger entry of these fields."""
    text = _canonical(position, instance_id, seq, org, row_hash, prev_hash)
    return hashlib.sha256(text.encode()).hexdigest()


def _canonical(
    position: int, instance_id: str, seq: int, org: str, row_hash: str, prev_hash: str
) -> str:
    """The canonical JSON of an entry's body, written out in its sorted key order (one entry
    per step: the generic encoder's set-up costs more than the text)."""
    if not (
        type(position) is int
        and type(seq) is int
        and type(instance_id) is str
        and type(org) is str
        and type(prev_hash) is str
        and type(row_hash) is str
    ):
        body = {"position": position, "instance_id": instance_id, "seq": seq, "org": org,
                "row_hash": row_hash, "prev_hash": prev_hash}  # fmt: skip
        return canonical_json(body)
    return (
        f'{{"instance_id":{json_text(instance_id)},"org":{json_text(org)},'
        f'"position":{position},"prev_hash":{json_text(prev_hash)},'
        f'"row_hash":{json_text(row_hash)},"seq":{seq}}}'
    )


def append_rows(commit: Commit, head: tuple[int, str]) -> list[tuple[Any, ...]]:
    """The ledger entries of a commit's history rows, following ``head`` (position, hash), each
    as the tuple of its fields in order (position, instance id, seq, org, row hash, previous
    hash, hash): what a store writes.

    A history row's org is that of the instance row the commit writes with it.
    """
    orgs = entry_orgs(commit)
    position, prev = head
    out: list[tuple[Any, ...]] = []
    for row in commit.history:
        position += 1
        iid, org = row.instance_id, orgs.get(row.instance_id, "")
        digest = entry_hash(position, iid, row.seq, org, row.hash, prev)
        out.append((position, iid, row.seq, org, row.hash, prev, digest))
        prev = digest
    return out


def append_entries(commit: Commit, head: tuple[int, str]) -> list[LedgerEntry]:
    """:func:`append_rows` as entries."""
    return [LedgerEntry(*fields) for fields in append_rows(commit, head)]


def entry_orgs(commit: Commit) -> dict[str, str]:
    """The org of each instance a commit writes, which its history rows' ledger entries name
    (an instance it does not write: "")."""
    orgs: dict[str, str] = {i.id: i.org for i in commit.inserts}
    orgs.update((i.id, i.org) for i, _ in commit.updates)
    return orgs


def _finding(kind: str, message: str, **where: Any) -> dict[str, Any]:
    return {"instance_id": where.get("instance_id"), "seq": where.get("seq"),
            "position": where.get("position"), "kind": kind, "message": message}  # fmt: skip


def verify_ledger(
    entries: Iterable[LedgerEntry],
    rows: Mapping[tuple[str, int], str],
    orgs: Mapping[str, str],
    *,
    checkpoints: Iterable[Mapping[str, Any]] = (),
    scope: set[str] | None = None,
) -> list[dict[str, Any]]:
    """Check the ledger against itself, the history and the checkpoints.

    Args:
        entries: the ledger, in position order.
        rows: every stored history row's hash by (instance id, seq).
        orgs: every stored instance's org by id.
        checkpoints: verified checkpoint statements (``position``, ``hash``).
        scope: when given, only these instances' positions are held to ``rows`` and ``orgs``
            (an auditor's bundle of one org); the chain of every position is checked all the
            same.

    Returns:
        Findings (instance, seq, ledger position, kind, message): ``ledger-gap``,
        ``ledger-changed``, ``ledger-reordered``, ``ledger-duplicate``, ``removed`` (a ledgered
        row is gone),
        ``changed`` (a ledgered row differs from what was ledgered), ``inserted`` (a row never
        ledgered), ``orphaned`` (a row whose instance row is gone), ``moved-org``,
        ``truncated`` and ``checkpoint-mismatch``.
    """
    findings: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    by_position: dict[int, str] = {}
    prev, expected = GENESIS, 1
    for e in entries:
        if e.position != expected:
            findings.append(
                _finding(
                    "ledger-gap",
                    f"ledger position {expected} expected, found {e.position}",
                    position=expected,
                )
            )
            expected = e.position
        if e.compute_hash() != e.hash:
            findings.append(
                _finding(
                    "ledger-changed",
                    f"ledger position {e.position} was changed after it was written",
                    position=e.position,
                    instance_id=e.instance_id,
                    seq=e.seq,
                )
            )
        elif e.prev_hash != prev:
            findings.append(
                _finding(
                    "ledger-reordered",
                    f"ledger position {e.position} does not follow the position before it",
                    position=e.position,
                    instance_id=e.instance_id,
                    seq=e.seq,
                )
            )
        key = (e.instance_id, e.seq)
        if key in seen:
            findings.append(
                _finding(
                    "ledger-duplicate",
                    f"history row {e.seq} of {e.instance_id} is ledgered a second time at "
                    f"position {e.position}",
                    position=e.position,
                    instance_id=e.instance_id,
                    seq=e.seq,
                )
            )
        seen.add(key)
        by_position[e.position] = e.hash
        prev = e.hash
        expected = e.position + 1
        if scope is not None and e.instance_id not in scope:
            continue
        stored = rows.get(key)
        where = {"position": e.position, "instance_id": e.instance_id, "seq": e.seq}
        if stored is None:
            findings.append(
                _finding(
                    "removed",
                    f"history row {e.seq} of {e.instance_id} is in the ledger at position "
                    f"{e.position} but no longer stored",
                    **where,
                )
            )
        elif stored != e.row_hash:
            findings.append(
                _finding(
                    "changed",
                    f"history row {e.seq} of {e.instance_id} is not the row ledgered at "
                    f"position {e.position}",
                    **where,
                )
            )
        org = orgs.get(e.instance_id)
        if org is not None and org != e.org:
            findings.append(
                _finding(
                    "moved-org",
                    f"instance {e.instance_id} is stored in org {org!r} but was ledgered in "
                    f"org {e.org!r}",
                    **where,
                )
            )
    for key in sorted(k for k in rows if k[0] not in orgs):
        findings.append(
            _finding(
                "orphaned",
                f"history row {key[1]} of {key[0]} has no instance row (the instance was deleted)",
                instance_id=key[0],
                seq=key[1],
            )
        )
    for key in sorted(set(rows) - seen):
        findings.append(
            _finding(
                "inserted",
                f"history row {key[1]} of {key[0]} was never ledgered",
                instance_id=key[0],
                seq=key[1],
            )
        )
    head = expected - 1
    for cp in checkpoints:
        position, digest = int(cp["position"]), str(cp["hash"])
        if position > head:
            findings.append(
                _finding(
                    "truncated",
                    f"a checkpoint vouches for ledger position {position}; the ledger ends at "
                    f"{head}",
                    position=head + 1,
                )
            )
        elif position > 0 and by_position.get(position) != digest:
            findings.append(
                _finding(
                    "checkpoint-mismatch",
                    f"ledger position {position} is not the one the checkpoint signed: the "
                    "ledger up to it was rewritten",
                    position=position,
                )
            )
    return _unique(findings)


def _unique(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out, keys = [], set()
    for f in findings:
        key = (f["kind"], f["instance_id"], f["seq"], f["position"])
        if key not in keys:
            keys.add(key)
            out.append(f)
    return out


def entry_of(row: HistoryEntry, position: int, org: str, prev: str) -> LedgerEntry:
    """The ledger entry of one history row at ``position``."""
    return LedgerEntry(position, row.instance_id, row.seq, org, row.hash, prev).sealed()
