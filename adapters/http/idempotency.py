"""Idempotency keys: a retried request with the same key is applied once.

A key is the caller's: the command id it becomes is a digest of the caller's org, the caller's
id and the key, each part kept apart (a JSON array), so that no two callers' keys meet however
their ids are spelled. The engine answers a command id seen before with the first result only
when the request is the same (workflow or instance, trigger, payload, reason); the same key with
another request is a 409 problem naming the key and what differs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from xieshang import Actor, ConcurrencyConflict, ConflictCase
from xieshang.shared import canonical_json

from .problems import ApiProblem

__all__ = ["command_id", "keyed"]

PREFIX = "http:"


def command_id(actor: Actor, key: str | None) -> str | None:
    """The engine's command id of the caller's ``key``; None without a key."""
    if key is None:
        return None
    scope = canonical_json([actor.org, actor.id, key])
    return PREFIX + hashlib.sha256(scope.encode()).hexdigest()


@contextmanager
def keyed(key: str | None) -> Iterator[None]:
    """Turns the engine's conflict over a command id used before into a 409 naming ``key``."""
    try:
        yield
    except ConcurrencyConflict as e:
        if key is None or e.case is not ConflictCase.COMMAND_USED:
            raise
        what = e.differs or "request"
        raise ApiProblem(
            409,
            e.code,
            f"Idempotency-Key {key!r} was used for another request (its {what} differs); "
            "send a new key for a new request, or the same request to get its answer again",
            idempotency_key=key,
            differs=e.differs,
            case=e.case.value,
            instance_id=e.instance_id,
        ) from e
