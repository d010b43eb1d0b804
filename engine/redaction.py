"""Redaction: remove a personal value from the history without breaking the proof.

A sealed history row covers each payload field by a salted digest (:class:`HistoryEntry`), so a
field's value and salt can be removed while the row's hash, the chain and the ledger stay true.
A redaction is one audited command (:data:`REDACT`, internal, by an ``admin``, with a reason):

- every row of the instance whose payload holds one of the fields gets ``[redacted]`` in the
  field's place and keeps only its digest;
- the instance's data fields that held values derived from them (found by replaying the history
  with the fields redacted and comparing) become ``[redacted]`` too;
- the redaction row records the fields, the rows and the data fields, so a replay reproduces it.

It is refused, and nothing changes, when a field is in no row, when a row holding it was written
before rows were sealed, when the replay could no longer re-run a step (a guard or effect needs the
value), or when a data field to clear is public (its value has been announced in events).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import access
from .errors import CommandRefused, Forbidden, InvalidPayload, XieshangError
from .records import (
    REDACTED,
    REDACTED_PREFIX,
    Actor,
    Commit,
    HistoryEntry,
    Instance,
    canonical_json,
)
from .rows import history_row

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = ["REDACT", "REDACTOR_ROLE", "apply_redaction", "redact"]

REDACT = "redact"
REDACTOR_ROLE = "admin"


def redact(
    engine: Engine,
    instance_id: str,
    fields: list[str],
    actor: Actor,
    reason: str,
    now: datetime | None = None,
) -> Instance:
    """Redact payload ``fields`` from every row of one instance's history (see the module).

    Raises:
        Forbidden: the actor is not an ``admin``.
        InvalidPayload: no fields, no reason, or a field no row of the instance holds.
        CommandRefused: a row holding a field was written before rows were sealed, the replay
            would need a value, or a data field to clear is public.
        NotFound: no such instance (or another org's).
    """
    if REDACTOR_ROLE not in actor.roles:
        raise Forbidden(
            f"actor {actor.id!r} with roles {sorted(actor.roles)} may not redact; allowed roles: "
            f"{REDACTOR_ROLE}",
            trigger=REDACT,
            actor=actor.id,
            allowed=[REDACTOR_ROLE],
        )
    wanted = sorted(set(fields))
    errors: list[dict[str, Any]] = []
    if not wanted:
        errors.append({"field": "fields", "error": "name at least one payload field"})
    if not (reason and reason.strip()):
        errors.append({"field": "reason", "error": "required"})
    if errors:
        raise InvalidPayload(f"command {REDACT!r}", errors)
    instance = engine._load(instance_id, actor, fresh=True)
    rows = engine.store.history(instance_id)
    own = [row for row in rows if row.trigger != REDACT]
    held = sorted({k for row in own for k in row.payload if k not in row.redacted_fields()})
    done = {k for row in own for k in row.redacted_fields()}
    unknown = [f for f in wanted if f not in held]
    if unknown and set(unknown) <= done:
        raise CommandRefused(
            f"{', '.join(unknown)} of {instance_id} already redacted in every row that held it",
            instance_id=instance_id,
            fields=unknown,
        )
    if unknown:
        raise InvalidPayload(
            f"command {REDACT!r} on {instance_id}",
            [
                {
                    "field": f,
                    "error": "no row of this instance holds it"
                    + (f"; fields held: {', '.join(held)}" if held else ""),
                }
                for f in unknown
            ],
        )
    resealed = [r for r in (_redacted(row, wanted) for row in own) if r is not None]
    unsealed = [r.seq for r in resealed if r.seal is None]
    if unsealed:
        raise CommandRefused(
            f"rows {unsealed} of {instance_id} were written before payload fields were sealed: "
            "their hash covers the values themselves, so they cannot be redacted",
            instance_id=instance_id,
            rows=unsealed,
        )
    by_seq = {r.seq: r for r in resealed}
    trial = [by_seq.get(row.seq, row) for row in rows]
    try:
        replayed = engine._replay_rows(trial)
    except XieshangError as e:
        raise CommandRefused(
            f"redacting {', '.join(wanted)} of {instance_id} is refused: the history would no "
            f"longer replay ({e.message})",
            instance_id=instance_id,
            fields=wanted,
        ) from e
    cleared = sorted(
        k
        for k in set(replayed.data) | set(instance.data)
        if canonical_json(replayed.data.get(k)) != canonical_json(instance.data.get(k))
    )
    wf = engine._workflow_of(instance)
    public = [k for k in cleared if k in wf.definition.data and wf.definition.data[k].public]
    if public:
        raise CommandRefused(
            f"redacting {', '.join(wanted)} of {instance_id} would clear the public data fields "
            f"{', '.join(public)}, whose values events have already announced",
            instance_id=instance_id,
            fields=wanted,
            public=public,
        )
    now = now or engine.clock.now()
    record = {"fields": wanted, "rows": sorted(by_seq), "data": cleared}
    new = apply_redaction(instance, record, now)
    entry = history_row(
        instance,
        new,
        REDACT,
        actor,
        REDACTOR_ROLE,
        record,
        now=now,
        recorded_at=engine.clock.now(),
        reason=reason,
        visibility="internal",
    )
    # pending timers were set at the old version: re-issued at the new one, due as they were
    timers = [replace(t, version=new.version) for t in engine.store.timers_of(instance_id)]
    commit = Commit(
        updates=[(new, instance.version)],
        history=[entry],
        reseal=resealed,
        clear_timers=[instance_id],
        timers=timers,
    )
    if access.readers_key(wf, new) != access.readers_key(wf, instance):
        commit.readers[new.id] = access.readers(wf, new)
    engine.store.apply(commit)
    return new


def apply_redaction(instance: Instance, record: dict[str, Any], now: datetime) -> Instance:
    """The instance after a redaction row ``record`` (also how a replay applies one)."""
    new = instance.copy()
    new.version += 1
    new.updated_at = now
    for name in record.get("data", ()):
        new.data[name] = REDACTED
    return new


def _redacted(row: HistoryEntry, fields: list[str]) -> HistoryEntry | None:
    """``row`` with ``fields`` redacted, or None when it holds none of them unredacted."""
    hit = [f for f in fields if f in row.payload and f not in row.redacted_fields()]
    if not hit:
        return None
    if row.seal is None:
        return row  # reported as unsealed by the caller
    digests = row.payload_digests()
    payload = dict(row.payload)
    seal = dict(row.seal)
    for name in hit:
        payload[name] = REDACTED
        seal[name] = REDACTED_PREFIX + digests[name]
    return replace(row, payload=payload, seal=seal)
