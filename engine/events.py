"""CloudEvents 1.0 (structured JSON) for committed steps, written to the outbox with them."""

from __future__ import annotations

from typing import Any

from .compiler import CompiledWorkflow, CompiledTransition
from .records import EventRecord, HistoryEntry, Instance

__all__ = ["MAX_EVENT_BYTES", "SOURCE_PREFIX", "events_for"]

SOURCE_PREFIX = "xieshang"
MAX_EVENT_BYTES = 64 * 1024


def _public_data(wf: CompiledWorkflow, data: dict[str, Any]) -> dict[str, Any]:
    return {k: data[k] for k, spec in wf.definition.data.items() if spec.public and k in data}


def events_for(
    wf: CompiledWorkflow,
    instance: Instance,
    entry: HistoryEntry,
    transition: CompiledTransition | None,
    *,
    deployment: str = "default",
) -> list[EventRecord]:
    """The events of one history entry: a generic one, then those the definition names.

    Internal entries (``visibility: internal``) announce nothing.
    """
    if entry.visibility != "public":
        return []
    if transition is None:
        names = ["instance.started", *wf.definition.start.emits]
    else:
        names = ["instance.transitioned", *transition.spec.emits]
    if instance.final and transition is not None:
        names.insert(1, "instance.completed")
    data = {
        "workflow": instance.workflow,
        "workflow_version": instance.workflow_version,
        "org": instance.org,
        "trigger": entry.trigger,
        "from": entry.source,
        "to": entry.target,
        "actor": {"id": entry.actor["id"], "role": entry.role},
        "version": instance.version,
        "parent_id": instance.parent_id,
        "unit": instance.unit,
        "data": _public_data(wf, instance.data),
    }
    out = []
    for k, name in enumerate(names):
        event_id = f"{instance.id}-{entry.seq}-{k}"
        body = {
            "specversion": "1.0",
            "id": event_id,
            "source": f"/{SOURCE_PREFIX}/{deployment}/{instance.org}/{instance.workflow}",
            "type": f"{SOURCE_PREFIX}.{name}",
            "subject": instance.id,
            "time": entry.occurred_at,
            "datacontenttype": "application/json",
            "sequence": f"{entry.seq:012d}",
            "data": data,
        }
        out.append(EventRecord(event_id, instance.id, entry.seq, body["type"], instance.org, body))
    return out
