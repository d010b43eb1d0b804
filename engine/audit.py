"""Audit: replay a history through its pinned definition, and verify the hash chains.

A replay re-runs each transition's payload, guard over the instance and effects; the rows the
engine writes on its own (``overdue``, ``parent_update``, ``calendar_reconcile``) carry what
they changed, and are applied as recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .checks import Refusal, check
from .commands import commit_step
from .compiler import CompiledWorkflow
from .deadlines import due
from .errors import (
    CommandRefused,
    ConcurrencyConflict,
    ConflictCase,
    NotFound,
    TransitionNotAllowed,
    XieshangError,
)
from .ledger import verify_ledger
from .reconcile import RECONCILE
from .records import Actor, HistoryEntry, Instance, canonical_json, copy_json
from .rows import OVERDUE, PARENT_UPDATE, recorded_deadline
from .steps import Command, overdue_step

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = ["replay_rows", "result_of", "verify", "verify_one"]


def replay_rows(engine: Engine, rows: list[HistoryEntry]) -> Instance:
    """The instance that ``rows`` (an instance's history from row 1) leave.

    Raises:
        XieshangError: a step its definition refuses.
    """
    first = rows[0]
    wf = engine._workflow_by_hash(first.definition_hash)
    created = datetime.fromisoformat(first.occurred_at)
    instance = Instance(
        id=first.instance_id,
        workflow=first.workflow,
        workflow_version=first.workflow_version,
        definition_hash=first.definition_hash,
        org=first.actor.get("org") or "",
        state=first.target,
        data=copy_json(first.payload),
        version=1,
        created_at=created,
        updated_at=created,
        entered_at=created,
        parent_id=first.parent_id,
        head_hash=first.hash,
    )
    instance.due_at, instance.due_basis = due(engine, wf, instance)
    recorded_deadline(instance, first)
    for row in rows[1:]:
        now = datetime.fromisoformat(row.occurred_at)
        actor = Actor.from_dict(row.actor)
        in_place = row.source == instance.state == row.target
        if row.trigger == OVERDUE and in_place:
            instance = overdue_step(engine, wf, instance, now)[1]
        elif row.trigger in (PARENT_UPDATE, RECONCILE) and in_place:
            instance = instance.copy()
            instance.version += 1
            instance.updated_at = now
            if row.trigger == PARENT_UPDATE:
                for name, value in row.payload.get("set", {}).items():
                    if value is None:
                        instance.data.pop(name, None)
                    else:
                        instance.data[name] = value
            recorded_deadline(instance, row)
        else:
            instance = _replay_transition(engine, wf, instance, row, actor, now)
            recorded_deadline(instance, row)
        instance.head_hash = row.hash
    return instance


def _replay_transition(
    engine: Engine,
    wf: CompiledWorkflow,
    instance: Instance,
    row: HistoryEntry,
    actor: Actor,
    now: datetime,
) -> Instance:
    candidates = [
        t
        for t in wf.by_trigger.get(row.trigger, ())
        if instance.state in t.sources and t.target == row.target
    ]
    if not candidates:
        raise TransitionNotAllowed(
            f"replay of row {row.seq}: no transition {row.trigger!r} from "
            f"{instance.state!r} to {row.target!r}",
            trigger=row.trigger,
            state=instance.state,
            allowed=[],
        )
    command = Command(row.trigger, actor, row.payload, now, row.reason or "-")
    errors: list[CommandRefused] = []
    for t in candidates:
        try:
            checked = check(engine, wf, instance, t, command, replay=True)
        except Refusal as r:
            errors.append(r.error)
            continue
        # the row as it was written: its reason, command id and role, not the replay's
        as_written = replace(command, reason=row.reason, command_id=row.command_id)
        checked = replace(checked, command=as_written, role=row.role)
        return commit_step(engine, checked, replay=True)[1]
    raise errors[0]


def result_of(engine: Engine, row: HistoryEntry, instance_id: str | None, trigger: str) -> Instance:
    """The instance as the command of ``row`` left it, for a retry of that command.

    Raises:
        ConcurrencyConflict: the command id was used for another instance or trigger.
    """
    if (instance_id is not None and row.instance_id != instance_id) or row.trigger != trigger:
        raise ConcurrencyConflict(row.instance_id, None, row.seq, case=ConflictCase.COMMAND_USED)
    rows = engine.store.history(row.instance_id)[: row.seq]
    return replay_rows(engine, rows)


def verify(
    engine: Engine, instance_id: str | None, checkpoints: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The problems of one instance, or of all and of the store-wide ledger (see
    :meth:`Engine.verify`)."""
    ids = [instance_id] if instance_id is not None else list(engine.store.instance_ids())
    problems: list[dict[str, Any]] = []
    for iid in ids:
        problem = verify_one(engine, iid)
        if problem is not None:
            problems.append(problem)
    if instance_id is None:
        reported = {p["instance_id"] for p in problems}
        findings = verify_ledger(
            engine.store.ledger(),
            engine.store.row_hashes(),
            engine.store.instance_orgs(),
            checkpoints=checkpoints,
        )
        problems += [
            f for f in findings if f["instance_id"] is None or f["instance_id"] not in reported
        ]
    return problems


def verify_one(engine: Engine, instance_id: str) -> dict[str, Any] | None:
    """The first problem of one instance's chain and replay, or None when it verifies.

    Raises:
        NotFound: neither an instance row nor history rows for ``instance_id``.
    """

    def broken(seq: int | None, kind: str, message: str) -> dict[str, Any]:
        return {"instance_id": instance_id, "seq": seq, "kind": kind, "message": message}

    stored = engine.store.load(instance_id, fresh=True)
    rows = engine.store.history(instance_id)
    if stored is None and not rows:
        raise NotFound("instance", instance_id)
    if stored is None:
        return broken(None, "missing-instance", "history rows without an instance row")
    if not rows:
        return broken(None, "missing-history", "the instance has no history")
    prev = ""
    for expected_seq, row in enumerate(rows, start=1):
        if row.seq != expected_seq:
            kind = "removed" if row.seq > expected_seq else "reordered"
            return broken(expected_seq, kind, f"row {expected_seq} expected, found row {row.seq}")
        if row.prev_hash != prev:
            return broken(row.seq, "reordered", f"row {row.seq} does not follow the row before it")
        if row.compute_hash() != row.hash:
            return broken(row.seq, "changed", f"row {row.seq} was changed after it was written")
        prev = row.hash
    if stored.head_hash != prev or stored.version != len(rows):
        return broken(
            len(rows) + 1,
            "removed",
            f"the instance is at version {stored.version} but the history ends at row {len(rows)}",
        )
    try:
        replayed = replay_rows(engine, rows)
    except XieshangError as e:
        return broken(None, "replay-failed", e.message)
    except (ValueError, TypeError, KeyError) as e:  # a rewritten row that does not parse
        return broken(None, "replay-failed", f"a row cannot be read: {e}")
    replayed_data, stored_data = canonical_json(replayed.data), canonical_json(stored.data)
    if (replayed.state, replayed_data) != (stored.state, stored_data):
        return broken(
            None,
            "replay-differs",
            f"replay gives state {replayed.state!r} and data {replayed_data}, the store holds "
            f"{stored.state!r} and {stored_data}",
        )
    return None
