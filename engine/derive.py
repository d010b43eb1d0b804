"""What verify derives from an instance's history and holds its stored records to.

A replay of the history gives the instance row's columns, the events the rows announced and
the timers the current state visit may have pending. These pure functions compare the stored
records with that and name each difference: ``moved-org``, ``moved-unit``, ``moved-parent``,
``column-differs``, ``forged-event``, ``removed-event``, ``forged-timer``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .records import EventRecord, HistoryEntry, Instance, TimerRecord, canonical_json, iso

__all__ = ["event_findings", "instance_findings", "timer_findings"]

# the instance columns a replay gives, and the finding kind when the stored one differs
_COLUMNS: tuple[tuple[str, str], ...] = (
    ("workflow", "column-differs"),
    ("workflow_version", "column-differs"),
    ("definition_hash", "column-differs"),
    ("org", "moved-org"),
    ("parent_id", "moved-parent"),
    ("unit", "moved-unit"),
    ("version", "column-differs"),
    ("final", "column-differs"),
    ("overdue", "column-differs"),
    ("due_at", "column-differs"),
    ("created_at", "column-differs"),
    ("suspended_at", "column-differs"),
)
# reminders sent before reminders were recorded as rows were announced by a timer alone
_UNCHECKED = "instance.reminder"


def _shown(value: Any) -> str:
    return iso(value) if hasattr(value, "isoformat") else canonical_json(value)


def instance_findings(
    stored: Instance, replayed: Instance, *, org_known: bool = True
) -> list[tuple[str, str]]:
    """The columns of the stored instance row that differ from the replay: (kind, message).

    ``org_known`` is False when the first row's actor named no org (the org was given apart).
    """
    out: list[tuple[str, str]] = []
    for column, kind in _COLUMNS:
        if column == "org" and not org_known:
            continue
        have, want = getattr(stored, column), getattr(replayed, column)
        if have != want:
            out.append(
                (
                    kind,
                    f"the instance row's {column} is {_shown(have)}; its history gives "
                    f"{_shown(want)}",
                )
            )
    return out


def _comparable(event: EventRecord) -> dict[str, Any]:
    # the deployment's name in `source` is configuration, not history
    return {k: v for k, v in event.body.items() if k != "source"}


def event_findings(
    announced: Iterable[EventRecord],
    stored: Iterable[EventRecord],
    rows: Iterable[HistoryEntry],
) -> list[tuple[int | None, str, str]]:
    """Stored outbox events against those the replayed rows announce: (seq, kind, message).

    A stored event that no row announced, or whose content differs, is ``forged-event`` (the
    relay would sign it for delivery); an announced event that is gone is ``removed-event``.
    A reminder is held to the ``remind`` row that announced it; one that no row announced was
    sent before reminders were recorded, and is not held.
    """
    expected = {e.id: e for e in announced}
    out: list[tuple[int | None, str, str]] = []
    seen: set[str] = set()
    for event in stored:
        seen.add(event.id)
        if event.type.endswith(_UNCHECKED) and event.id not in expected:
            continue
        want = expected.get(event.id)
        if want is None:
            out.append((event.seq, "forged-event", f"event {event.id} was announced by no row"))
            continue
        if _comparable(event) != _comparable(want) or event.type != want.type:
            out.append(
                (
                    event.seq,
                    "forged-event",
                    f"event {event.id} is not the event row {event.seq} announced",
                )
            )
    for event_id, want in sorted(expected.items()):
        if event_id not in seen:
            out.append((want.seq, "removed-event", f"event {event_id} of row {want.seq} is gone"))
    return out


def timer_findings(
    stored: Iterable[TimerRecord], expected: Iterable[TimerRecord]
) -> list[tuple[str, str]]:
    """Pending timers the history does not imply: (kind, message).

    A pending timer must be one the current state visit sets (its kind and trigger, set at a
    version the instance has reached); a deadline timer must fall on the replayed deadline. A
    timer that fired, and so is no longer pending, is not a finding.
    """
    allowed = {(t.kind, t.trigger) for t in expected}
    newest = max((t.version for t in expected), default=0)
    deadlines = {t.due_at for t in expected if t.kind == "deadline"}
    out = []
    for t in stored:
        # a timer set at an earlier version of the same visit stays pending when a later step
        # left the deadline where it was
        if (
            (t.kind, t.trigger) not in allowed
            or t.version > newest
            or (t.kind == "deadline" and t.due_at not in deadlines)
        ):
            out.append(
                (
                    "forged-timer",
                    f"a pending {t.kind} timer firing {t.trigger!r} at {iso(t.due_at)} "
                    f"(version {t.version}) was set by no step",
                )
            )
    return out
