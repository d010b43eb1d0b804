"""CloudEvents 1.0 (structured JSON) for committed steps, written to the outbox with them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .compiler import CompiledTransition, CompiledWorkflow
from .jsontext import copy_json
from .records import EventRecord, HistoryEntry, Instance, TimerRecord, iso

__all__ = ["MAX_EVENT_BYTES", "SOURCE_PREFIX", "events_for", "reminder_event"]

SOURCE_PREFIX = "xieshang"
MAX_EVENT_BYTES = 64 * 1024


def events_for(
    wf: CompiledWorkflow,
    instance: Instance,
    entry: HistoryEntry,
    transition: CompiledTransition | None,
    *,
    deployment: str = "default",
    names: list[str] | None = None,
    extra: dict[str, Any] | None = None,
) -> list[EventRecord]:
    """The events of one history entry: a generic one, then those the definition names, then
    one ``<workflow>.warning`` per warning the entry records (its ``code`` and ``message`` in
    the data).

    Internal entries (``visibility: internal``) announce nothing. ``extra`` adds fields to the
    events' data (a moved deadline's old and new dates).
    """
    if entry.visibility != "public":
        return []
    if names is None:
        if transition is None:
            names = ["instance.started", *wf.definition.start.emits]
        else:
            names = ["instance.transitioned", *transition.spec.emits]
            if instance.final:
                names.insert(1, "instance.completed")
    data = _event_data(
        wf,
        instance,
        entry.trigger,
        entry.source,
        entry.target,
        {"id": entry.actor["id"], "role": entry.role},
    )
    if extra:
        data.update(extra)
    named = [(name, data) for name in names]
    warned = [
        (f"{instance.workflow}.warning", {**data, "code": w["code"], "message": w["message"]})
        for w in (entry.warnings or ())
        if transition is not None
    ]
    source = _source(instance, deployment)  # the same for each event of the entry
    return [
        _record(instance, entry.seq, f"{instance.id}-{entry.seq}-{k}", name, entry.occurred_at,
                body, source)
        for k, (name, body) in enumerate([*named, *warned])
    ]  # fmt: skip


def reminder_event(
    wf: CompiledWorkflow,
    instance: Instance,
    timer: TimerRecord,
    now: datetime,
    *,
    deployment: str = "default",
) -> list[EventRecord]:
    """The reminder before a deadline (announced with the ``remind`` row that records it);
    ``instance`` is as after that row."""
    data = _event_data(
        wf, instance, "remind", instance.state, instance.state, {"id": "system", "role": "system"}
    )
    data["due_at"] = iso(instance.due_at) if instance.due_at else None
    event_id = f"{instance.id}-reminder-{iso(timer.due_at)}"
    source = _source(instance, deployment)
    return [
        _record(instance, instance.version, event_id, "instance.reminder", iso(now), data, source)
    ]


def _event_data(
    wf: CompiledWorkflow,
    instance: Instance,
    trigger: str,
    source: str | None,
    target: str,
    actor: dict[str, Any],
) -> dict[str, Any]:
    data = instance.data
    # the event's own copy: the instance is the caller's once the step answers it
    public = copy_json({k: data[k] for k in wf.public_fields if k in data})
    return {
        "workflow": instance.workflow,
        "workflow_version": instance.workflow_version,
        "org": instance.org,
        "trigger": trigger,
        "from": source,
        "to": target,
        "actor": actor,
        "version": instance.version,
        "parent_id": instance.parent_id,
        "unit": instance.unit,
        "due_at": iso(instance.due_at) if instance.due_at else None,
        "overdue": instance.overdue,
        "data": public,
    }


def _record(
    instance: Instance,
    seq: int,
    event_id: str,
    name: str,
    time: str,
    data: dict[str, Any],
    source: str,
) -> EventRecord:
    kind = f"{SOURCE_PREFIX}.{name}"
    body = {
        "specversion": "1.0", "id": event_id, "source": source, "type": kind,
        "subject": instance.id, "time": time, "datacontenttype": "application/json",
        "sequence": f"{seq:012d}", "data": data,
    }  # fmt: skip
    return EventRecord(event_id, instance.id, seq, kind, instance.org, body)


def _source(instance: Instance, deployment: str) -> str:
    return f"/{SOURCE_PREFIX}/{deployment}/{instance.org}/{instance.workflow}"
