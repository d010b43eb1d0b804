"""Console sessions: an API token exchanged once for a random session id kept in a cookie.

Only the sha256 of the session id is stored, with the hash of the token it was opened with, so
a session lives exactly as long as its token: revoking the token (``xieshang tokens revoke``,
``DELETE /tokens/{key}``) ends every session opened with it, in every server process, at the
next request. Each session holds its own CSRF secret, which every form carries back.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import sqlalchemy as sa

from xieshang import Actor
from xieshang.adapters.http.auth import TokenStore, hash_token
from xieshang.adapters.sql.tables import tokens as tokens_table
from xieshang.adapters.sql.tables import web_sessions
from xieshang.shared import iso

__all__ = ["SESSION_HOURS", "MemorySessionStore", "SQLSessionStore", "Session", "SessionStore"]

SESSION_HOURS = 12  # a session ends this long after sign-in, whatever happens to its token


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser: its cookie value (``id``), the actor it acts as, its CSRF secret."""

    id: str
    actor: Actor
    csrf: str

    def csrf_ok(self, sent: str | None) -> bool:
        """Whether a form carried this session's CSRF secret back."""
        return sent is not None and hmac.compare_digest(sent.encode(), self.csrf.encode())


class SessionStore(Protocol):
    """Where sessions live: opened with a token, found by cookie, ended by sign-out."""

    def open(self, token: str) -> Session | None:
        """A new session for a valid, unrevoked ``token``; None when the token is not one."""

    def find(self, session_id: str) -> Session | None:
        """The live session of this cookie value: None when unknown, signed out, expired, or
        its token was revoked."""

    def end(self, session_id: str) -> None:
        """Sign out: the session is refused from now on."""


def _digest(session_id: str) -> str:
    return hashlib.sha256(b"session:" + session_id.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


class MemorySessionStore:
    """Sessions in a dictionary, over any token store (for tests and embedding): each
    :meth:`find` asks the token store again, so a revoked token ends its sessions."""

    def __init__(self, tokens: TokenStore) -> None:
        self._tokens = tokens
        self._lock = threading.Lock()
        self._rows: dict[str, tuple[str, str, datetime]] = {}  # digest -> token, csrf, expiry

    def open(self, token: str) -> Session | None:
        actor = self._tokens.lookup(token)
        if actor is None:
            return None
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self._lock:
            self._rows[_digest(sid)] = (token, csrf, _now() + timedelta(hours=SESSION_HOURS))
        return Session(sid, actor, csrf)

    def find(self, session_id: str) -> Session | None:
        row = self._rows.get(_digest(session_id))
        if row is None or row[2] <= _now():
            return None
        actor = self._tokens.lookup(row[0])
        return None if actor is None else Session(session_id, actor, row[1])

    def end(self, session_id: str) -> None:
        with self._lock:
            self._rows.pop(_digest(session_id), None)


class SQLSessionStore:
    """Sessions in the ``web_sessions`` table, joined to ``tokens`` on every read (one indexed
    query a page), so any server process sees a sign-out or a revocation at once."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def open(self, token: str) -> Session | None:
        digest = hash_token(token)
        t = tokens_table
        now = _now()
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(t.c.actor).where(t.c.token_hash == digest, t.c.revoked_at.is_(None))
            ).first()
            if row is None:
                return None
            sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            conn.execute(
                web_sessions.insert().values(
                    session_hash=_digest(sid),
                    token_hash=digest,
                    csrf=csrf,
                    created_at=iso(now),
                    expires_at=iso(now + timedelta(hours=SESSION_HOURS)),
                    ended_at=None,
                )
            )
        return Session(sid, Actor.from_dict(json.loads(row.actor)), csrf)

    def find(self, session_id: str) -> Session | None:
        s, t = web_sessions, tokens_table
        q = (
            sa.select(s.c.csrf, t.c.actor)
            .join(t, t.c.token_hash == s.c.token_hash)
            .where(
                s.c.session_hash == _digest(session_id),
                s.c.ended_at.is_(None),
                s.c.expires_at > iso(_now()),
                t.c.revoked_at.is_(None),
            )
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        if row is None:
            return None
        return Session(session_id, Actor.from_dict(json.loads(row.actor)), row.csrf)

    def end(self, session_id: str) -> None:
        s = web_sessions
        with self.engine.begin() as conn:
            conn.execute(
                s.update()
                .where(s.c.session_hash == _digest(session_id), s.c.ended_at.is_(None))
                .values(ended_at=iso(_now()))
            )
