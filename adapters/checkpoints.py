"""Signed checkpoints of the ledger head, kept outside the database (Ed25519).

A checkpoint is a JSON file: a statement (the ledger's last position and hash, the time, the
number of instances per org) and an Ed25519 signature over its canonical JSON. Whoever can
write to the database but does not hold the private key cannot make a checkpoint vouch for a
ledger it rewrote: ``audit verify --checkpoint CP --public-key KEY.pub`` then finds the rewrite.
Keys and checkpoints are files written whole (a temporary file renamed into place), so a
process killed while writing one leaves the old file or none, never half of one.
"""

from __future__ import annotations

import base64
import binascii
import os
import signal
import tempfile
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from xieshang import Store, XieshangError
from xieshang.shared import canonical_json, iso

__all__ = [
    "ENV_KEY",
    "FORMAT",
    "CheckpointError",
    "generate_key",
    "load_private_key",
    "load_public_key",
    "make_checkpoint",
    "read_checkpoint",
    "write_checkpoint",
]

FORMAT = "xieshang-checkpoint/1"
ENV_KEY = "XIESHANG_AUDIT_KEY"  # the private key's PEM text, for a worker with no key file


class CheckpointError(XieshangError):
    """A key or a checkpoint file is missing, malformed, or its signature does not verify."""

    code = "checkpoint-invalid"


ENV_FAULT = "XIESHANG_FAULT"  # ``before_replace``: die (SIGKILL) with the file half-done


def write_whole(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that it is either all there or not there at all: into a
    temporary file beside it, synced, then renamed over it. A file another writer left behind
    when it was killed is removed first.

    With ``XIESHANG_FAULT=before_replace`` in the environment the process kills itself after
    writing the temporary file and before the rename (what the crash tests use)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*"):  # left by a writer that was killed
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        if os.environ.get(ENV_FAULT) == "before_replace":
            os.kill(os.getpid(), signal.SIGKILL)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def generate_key(path: Path) -> Path:
    """Write a new Ed25519 private key to ``path`` (mode 0600) and its public key to
    ``path.pub``; returns the public key's path.

    Raises:
        CheckpointError: ``path`` exists (a key is never overwritten).
    """
    if path.exists():
        raise CheckpointError(f"{str(path)!r} exists; a key is never overwritten", file=str(path))
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pub = path.with_name(path.name + ".pub")
    write_whole(pub, public)
    write_whole(path, private, mode=0o600)
    return pub


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise CheckpointError(
            f"cannot read the {what} {str(path)!r}: {e.strerror or e}", file=str(path)
        ) from e


def load_private_key(path: Path | None = None) -> Ed25519PrivateKey:
    """The signing key from ``path``, else from ``$XIESHANG_AUDIT_KEY`` (PEM text).

    Raises:
        CheckpointError: no key given, or not an Ed25519 private key.
    """
    if path is not None:
        data = _read(path, "private key")
    elif os.environ.get(ENV_KEY):
        data = os.environ[ENV_KEY].encode()
    else:
        raise CheckpointError(f"no private key: pass --key-file FILE or set {ENV_KEY}")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"not a PEM private key: {e}") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError("the private key is not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The verifying key at ``path`` (PEM).

    Raises:
        CheckpointError: missing, or not an Ed25519 public key.
    """
    try:
        key = serialization.load_pem_public_key(_read(path, "public key"))
    except ValueError as e:
        raise CheckpointError(f"{str(path)!r} is not a PEM public key: {e}") from e
    if not isinstance(key, Ed25519PublicKey):
        raise CheckpointError(f"{str(path)!r} is not an Ed25519 public key")
    return key


def fingerprint(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b16encode(raw[:8]).decode().lower()


def make_checkpoint(store: Store, key: Ed25519PrivateKey, now: datetime) -> dict[str, Any]:
    """A signed statement of the ledger head as it is now."""
    position, digest = store.ledger_head()
    statement = {
        "format": FORMAT,
        "position": position,
        "hash": digest,
        "time": iso(now),
        "instances_by_org": dict(sorted(Counter(store.instance_orgs().values()).items())),
        "key": fingerprint(key.public_key()),
    }
    signature = key.sign(canonical_json(statement).encode())
    return {"statement": statement, "signature": base64.b64encode(signature).decode()}


def write_checkpoint(checkpoint: dict[str, Any], path: Path) -> None:
    """Write a checkpoint file whole."""
    write_whole(path, (canonical_json(checkpoint) + "\n").encode())


def read_checkpoint(path: Path, key: Ed25519PublicKey) -> dict[str, Any]:
    """The statement of the checkpoint at ``path``, once its signature verifies.

    Raises:
        CheckpointError: the file is malformed, or the signature is not ``key``'s.
    """
    import json

    try:
        found = json.loads(_read(path, "checkpoint"))
        statement = found["statement"]
        signature = base64.b64decode(found["signature"], validate=True)
        int(statement["position"])
        str(statement["hash"])
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise CheckpointError(f"{str(path)!r} is not a checkpoint file: {e}") from e
    if statement.get("format") != FORMAT:
        raise CheckpointError(
            f"{str(path)!r}: unknown checkpoint format {statement.get('format')!r}"
        )
    try:
        key.verify(signature, canonical_json(statement).encode())
    except InvalidSignature:
        raise CheckpointError(
            f"{str(path)!r}: the signature does not verify with this public key (a forged or "
            "altered checkpoint, or another deployment's key)",
            file=str(path),
        ) from None
    return dict(statement)
