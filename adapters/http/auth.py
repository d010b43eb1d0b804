"""Bearer tokens: issued once, stored as sha256 hashes, mapped to the actor every request acts as.

A token is ``xs_`` and 43 url-safe characters (256 random bits). Only its sha256 is kept, so a
leaked table gives no usable token. A token is named in listings and revocations by the first
characters of its hash (its *key*), never by its text.

A request's token is looked up in memory first: :class:`SQLTokenStore` keeps each valid token it
read for :data:`CACHE_SECONDS`, counted from before the read. A revocation is honoured at once by
the store that made it and within that time by every other store and process.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa

from xieshang import Actor, InvalidPayload, Usage
from xieshang.adapters.sql import engine_for
from xieshang.adapters.sql.tables import tokens as tokens_table
from xieshang.shared import iso

__all__ = [
    "CACHE_SECONDS",
    "TOKEN_PREFIX",
    "Authenticate",
    "MemoryTokenStore",
    "SQLTokenStore",
    "TokenInfo",
    "TokenStore",
    "hash_token",
    "new_token",
]

TOKEN_PREFIX = "xs_"
KEY_LENGTH = 12
MIN_KEY_LENGTH = 8
SYSTEM_ROLE = "system"
CACHE_SECONDS = 1.0  # how long a valid token may be taken from memory (a revocation's delay)
CACHE_ENTRIES = 10_000

Authenticate = Callable[..., Awaitable[Actor]]
"""The app's dependency that gives the actor of a request's bearer token (or answers 401)."""


def new_token() -> str:
    """A fresh random token (shown to its holder once, never stored)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The sha256 hex digest of a token: the only form a store keeps."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a listing shows of a token: its key (hash prefix), actor, label and dates."""

    key: str
    actor: Actor
    label: str
    created_at: str
    revoked_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "actor": self.actor.to_dict(),
            "label": self.label,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


class TokenStore(Protocol):
    """Where tokens live. ``lookup`` is on every request; the rest is administration.

    A store may also offer ``remembered(token) -> Actor | None``: the actor of a token it holds
    in memory, answered without I/O (None: call ``lookup``). The app then calls ``lookup`` (in
    its thread pool) only when ``remembered`` has no answer.
    """

    def create(self, actor: Actor, label: str = "") -> str:
        """Issue a token for ``actor``; returns its text, which is not kept anywhere."""

    def lookup(self, token: str) -> Actor | None:
        """The actor of a valid, unrevoked token; None otherwise."""

    def revoke(self, ref: str) -> bool:
        """Revoke the token given by its text or its key (a hash prefix). False: no such token.

        Raises:
            InvalidPayload: ``ref`` is too short, or matches more than one token.
        """

    def list(self) -> list[TokenInfo]:
        """Every token, revoked ones included, oldest first."""


def _now() -> str:
    return iso(datetime.now(UTC))


def _check_actor(actor: Actor) -> None:
    problems = []
    if not actor.roles:
        problems.append({"field": "actor.roles", "error": "a token's actor needs a role"})
    if not actor.org:
        problems.append({"field": "actor.org", "error": "a token's actor needs an org (@org)"})
    if SYSTEM_ROLE in actor.roles:
        problems.append(
            {
                "field": "actor.roles",
                "error": f"the role {SYSTEM_ROLE!r} is the "
                "engine's own (timers, joins); no token may hold it",
            }
        )
    if problems:
        raise InvalidPayload("token actor", problems)


def _ref_hash(ref: str) -> tuple[str, bool]:
    """The hash (or hash prefix) a revocation names, and whether it is a full hash."""
    if ref.startswith(TOKEN_PREFIX):
        return hash_token(ref), True
    ref = ref.lower()
    if len(ref) < MIN_KEY_LENGTH or any(c not in "0123456789abcdef" for c in ref):
        raise InvalidPayload(
            "token reference",
            [
                {
                    "field": "token",
                    "error": f"give the token or at least {MIN_KEY_LENGTH} hex "
                    f"characters of its key (got {ref!r})",
                }
            ],
        )
    return ref, len(ref) == 64


def _unique(ref: str, matches: list[str]) -> str | None:
    if len(matches) > 1:
        raise InvalidPayload(
            "token reference",
            [
                {
                    "field": "token",
                    "error": f"{ref!r} matches {len(matches)} tokens; give more characters",
                    "allowed": [m[:KEY_LENGTH] for m in matches],
                }
            ],
        )
    return matches[0] if matches else None


class MemoryTokenStore:
    """Tokens in a dictionary: for tests and embedding."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, tuple[Actor, str, str, str | None]] = {}

    def create(self, actor: Actor, label: str = "") -> str:
        _check_actor(actor)
        token = new_token()
        with self._lock:
            self._rows[hash_token(token)] = (actor, label, _now(), None)
        return token

    def lookup(self, token: str) -> Actor | None:
        digest = hash_token(token)
        found = None
        for stored, row in list(self._rows.items()):
            if hmac.compare_digest(stored, digest):
                found = row
        return found[0] if found is not None and found[3] is None else None

    def revoke(self, ref: str) -> bool:
        prefix, _ = _ref_hash(ref)
        with self._lock:
            found = _unique(ref, [h for h in self._rows if h.startswith(prefix)])
            if found is None:
                return False
            actor, label, created, revoked = self._rows[found]
            self._rows[found] = (actor, label, created, revoked or _now())
            return True

    def list(self) -> list[TokenInfo]:
        rows = sorted(self._rows.items(), key=lambda kv: (kv[1][2], kv[0]))
        return [TokenInfo(h[:KEY_LENGTH], a, lb, c, r) for h, (a, lb, c, r) in rows]


class SQLTokenStore:
    """Tokens in the ``tokens`` table of the deployment's database (SQLAlchemy Core).

    ``lookup`` answers a token it found valid less than ``cache_seconds`` ago from memory, so a
    request costs no query; ``revoke`` forgets the token here at once, and another store (or
    process) stops accepting it at most ``cache_seconds`` after the revocation commits.

    Args:
        engine: the SQLAlchemy engine of the store, or a database URL to open one (pooled).
        create: create the table when it is missing; the migrations create it with the rest of
            the schema (:func:`xieshang.adapters.sql.upgrade`), which is the usual way.
        cache_seconds: how long a valid token is answered from memory; 0 reads every time.

    Raises:
        Usage: ``cache_seconds`` is negative or above :data:`CACHE_SECONDS`.
    """

    def __init__(
        self,
        engine: sa.Engine | str,
        *,
        create: bool = True,
        cache_seconds: float = CACHE_SECONDS,
    ) -> None:
        if not 0 <= cache_seconds <= CACHE_SECONDS:
            raise Usage(
                f"cache_seconds must be from 0 to {CACHE_SECONDS:g}, the longest a revocation "
                f"may wait (got {cache_seconds!r})",
                option="cache_seconds",
                allowed=[0, CACHE_SECONDS],
            )
        self.engine = engine_for(engine, pooled=True)[0]
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._recent: dict[str, tuple[Actor, float]] = {}  # hash -> actor, valid until
        if create:
            tokens_table.create(self.engine, checkfirst=True)

    def close(self) -> None:
        """Close the pooled connections."""
        self.engine.dispose()

    def create(self, actor: Actor, label: str = "") -> str:
        _check_actor(actor)
        token = new_token()
        with self.engine.begin() as conn:
            conn.execute(
                tokens_table.insert().values(
                    token_hash=hash_token(token),
                    actor=json.dumps(actor.to_dict(), ensure_ascii=False, sort_keys=True),
                    created_at=_now(),
                    revoked_at=None,
                    label=label,
                )
            )
        return token

    def remembered(self, token: str) -> Actor | None:
        """The actor of ``token`` if this store read it valid less than ``cache_seconds`` ago,
        without reading the database; None: ask :meth:`lookup`."""
        hit = self._recent.get(hash_token(token))
        return hit[0] if hit is not None and time.monotonic() < hit[1] else None

    def lookup(self, token: str) -> Actor | None:
        digest = hash_token(token)
        # the clock is read before the query: a revocation the query misses committed after it
        read_at = time.monotonic()
        hit = self._recent.get(digest)
        if hit is not None and read_at < hit[1]:
            return hit[0]
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(
                    tokens_table.c.token_hash, tokens_table.c.actor, tokens_table.c.revoked_at
                ).where(tokens_table.c.token_hash == digest)
            ).first()
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(str(row.token_hash), digest):
            return None
        actor = Actor.from_dict(json.loads(row.actor))
        if self.cache_seconds:
            self._remember(digest, actor, read_at + self.cache_seconds)
        return actor

    def _remember(self, digest: str, actor: Actor, until: float) -> None:
        with self._lock:
            self._recent.pop(digest, None)
            if len(self._recent) >= CACHE_ENTRIES:  # drop the oldest: it expires first
                del self._recent[next(iter(self._recent))]
            self._recent[digest] = (actor, until)

    def revoke(self, ref: str) -> bool:
        prefix, full = _ref_hash(ref)
        col = tokens_table.c.token_hash
        with self.engine.begin() as conn:
            where = col == prefix if full else col.like(prefix + "%")
            found = _unique(ref, [r[0] for r in conn.execute(sa.select(col).where(where))])
            if found is None:
                return False
            conn.execute(
                tokens_table.update()
                .where(col == found, tokens_table.c.revoked_at.is_(None))
                .values(revoked_at=_now())
            )
        with self._lock:
            self._recent.pop(found, None)
        return True

    def list(self) -> list[TokenInfo]:
        t = tokens_table
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t).order_by(t.c.created_at, t.c.token_hash)).all()
        return [
            TokenInfo(
                r.token_hash[:KEY_LENGTH],
                Actor.from_dict(json.loads(r.actor)),
                r.label or "",
                r.created_at,
                r.revoked_at,
            )
            for r in rows
        ]
