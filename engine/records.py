"""The records the engine reads and writes: actors, instances, history entries, events, commits."""

from __future__ import annotations

import hashlib
import json
import operator
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .errors import InvalidPayload
from .jsontext import atom as _atom
from .jsontext import canonical_json, copy_json, json_text
from .schedules import provisional_years

if TYPE_CHECKING:
    from .duties import DutyRecord

__all__ = [
    "REDACTED",
    "REDACTED_PREFIX",
    "SYSTEM",
    "Actor",
    "Commit",
    "EventRecord",
    "HistoryEntry",
    "Instance",
    "TimerRecord",
    "canonical_json",
    "copy_json",
    "field_digest",
    "iso",
    "new_seal",
]

_ACTOR = re.compile(
    r"^(?P<id>[^:@\s]+):(?P<roles>[^@\s]+)(?:@(?P<org>[^/\s]+)(?:/(?P<unit>\S+))?)?$"
)


# the last two moments iso spelled, and how: a step spells its command's moment and the moment
# it is recorded at, each more than once (its history row, its instance row)
_spelled: tuple[datetime | None, str, datetime | None, str] = (None, "", None, "")


def iso(moment: datetime) -> str:
    """One spelling of a moment: UTC, microseconds. What hashes and SQL columns hold."""
    global _spelled
    last = _spelled
    if last[0] is moment:
        return last[1]
    if last[2] is moment:
        return last[3]
    if moment.tzinfo is UTC:  # (the plain form, cheaper, has the microseconds unless 0)
        text = moment.isoformat() if moment.microsecond else moment.isoformat("T", "microseconds")
        _spelled = (moment, text, last[0], last[1])  # one tuple, replaced whole: thread-safe
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: an id, the roles held, the organisation (政协) and the unit they act for."""

    id: str
    roles: frozenset[str]
    org: str | None = None
    unit: str | None = None

    @classmethod
    def of(cls, id: str, *roles: str, org: str | None = None, unit: str | None = None) -> Actor:
        return cls(id, frozenset(roles), org, unit)

    @classmethod
    def parse(cls, text: str) -> Actor:
        """``id:role[,role...][@org[/unit]]``, or a JSON object with id, roles, org, unit.

        Raises:
            InvalidPayload: ``text`` is neither.
        """
        if not isinstance(text, str):
            got = f"{text!r} that is a {type(text).__name__}"
            error = {"field": "actor", "error": "expected text", "got": got}
            raise InvalidPayload("actor", [error])
        text = text.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except ValueError as e:
                raise InvalidPayload("actor", [{"field": "actor", "error": str(e)}]) from e
            return cls.from_dict(value)
        m = _ACTOR.match(text)
        if not m:
            raise InvalidPayload(
                "actor",
                [
                    {
                        "field": "actor",
                        "error": "expected id:role[,role...][@org[/unit]]",
                        "got": repr(text),
                    }
                ],
            )
        roles = frozenset(r for r in m["roles"].split(",") if r)
        return cls(m["id"], roles, m["org"], m["unit"])

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> Actor:
        """An actor from ``{"id": ..., "roles": [...], "org": ..., "unit": ...}``.

        Raises:
            InvalidPayload: not such an object (``errors`` names the offending key).
        """

        def bad(key: str, error: str, got: Any) -> InvalidPayload:
            got_text = f"{got!r} that is a {type(got).__name__}"
            return InvalidPayload("actor", [{"field": key, "error": error, "got": got_text}])

        if not isinstance(value, dict):
            raise bad("actor", "an actor is an object with a string 'id'", value)
        if not isinstance(value.get("id"), str):
            raise bad("id", "an actor object needs a string 'id'", value.get("id"))
        roles = value.get("roles", [])
        if not isinstance(roles, list | tuple | set | frozenset) or not all(
            isinstance(r, str) for r in roles
        ):
            raise bad("roles", "'roles' must be a list of strings", roles)
        for key in ("org", "unit"):
            if value.get(key) is not None and not isinstance(value[key], str):
                raise bad(key, f"{key!r} must be a string", value[key])
        return cls(value["id"], frozenset(roles), value.get("org"), value.get("unit"))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "roles": sorted(self.roles)}
        if self.org is not None:
            out["org"] = self.org
        if self.unit is not None:
            out["unit"] = self.unit
        return out


SYSTEM = Actor("system", frozenset({"system"}))


@dataclass(slots=True)
class Instance:
    """One consultation item moving through its workflow, as stored."""

    id: str
    workflow: str
    workflow_version: int
    definition_hash: str
    org: str
    state: str
    data: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime
    entered_at: datetime
    final: bool = False
    due_at: datetime | None = None
    overdue: bool = False
    parent_id: str | None = None
    unit: str | None = None
    head_hash: str = ""
    children_version: int = 0
    due_basis: str | None = None
    suspended_at: datetime | None = None  # since when it is suspended (xieshang.suspension)

    def copy(self) -> Instance:
        return Instance(
            self.id,
            self.workflow,
            self.workflow_version,
            self.definition_hash,
            self.org,
            self.state,
            copy_json(self.data),
            self.version,
            self.created_at,
            self.updated_at,
            self.entered_at,
            self.final,
            self.due_at,
            self.overdue,
            self.parent_id,
            self.unit,
            self.head_hash,
            self.children_version,
            self.due_basis,
            self.suspended_at,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workflow": self.workflow,
            "workflow_version": self.workflow_version,
            "definition_hash": self.definition_hash,
            "org": self.org,
            "state": self.state,
            "version": self.version,
            "data": copy_json(self.data),
            "final": self.final,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "entered_at": iso(self.entered_at),
            "due_at": iso(self.due_at) if self.due_at else None,
            "due_provisional": provisional_years(self.due_basis),
            "due_basis": self.due_basis,
            "overdue": self.overdue,
            "parent_id": self.parent_id,
            "unit": self.unit,
            "suspended_at": iso(self.suspended_at) if self.suspended_at else None,
        }


# Built on every step and never assigned to after: not frozen, since a frozen dataclass sets
# each field through object.__setattr__, several times the cost of a plain assignment.
@dataclass(slots=True, unsafe_hash=True)
class HistoryEntry:
    """One row of an instance's audit history; ``hash`` chains it to the row before."""

    instance_id: str
    seq: int
    workflow: str
    workflow_version: int
    definition_hash: str
    trigger: str
    source: str | None
    target: str
    actor: dict[str, Any]
    role: str
    reason: str | None
    payload: dict[str, Any]
    visibility: str
    occurred_at: str
    recorded_at: str
    command_id: str | None
    prev_hash: str
    hash: str = ""
    parent_id: str | None = None
    deadline: dict[str, Any] | None = None
    warnings: list[dict[str, Any]] | None = None
    seal: dict[str, str] | None = None
    unit: str | None = None  # a creation's unit (the one a bound role acts for), when it has one

    def body(self) -> dict[str, Any]:
        """What the hash covers. A sealed row (``seal`` set) covers each payload field by its
        digest (:func:`field_digest`), so a field can later be redacted without breaking the
        chain; rows written before seals existed cover their payload as it is."""
        body = {
            "instance_id": self.instance_id,
            "seq": self.seq,
            "workflow": self.workflow,
            "workflow_version": self.workflow_version,
            "definition_hash": self.definition_hash,
            "trigger": self.trigger,
            "source": self.source,
            "target": self.target,
            "actor": self.actor,
            "role": self.role,
            "reason": self.reason,
            "payload": self.payload if self.seal is None else self.payload_digests(),
            "visibility": self.visibility,
            "occurred_at": self.occurred_at,
            "recorded_at": self.recorded_at,
            "command_id": self.command_id,
            "prev_hash": self.prev_hash,
            "parent_id": self.parent_id,
        }
        if self.deadline is not None:
            # rows written before deadlines were recorded keep the hash they were sealed with
            body["deadline"] = self.deadline
        if self.warnings is not None:
            body["warnings"] = self.warnings
        if self.seal is not None:
            body["payload_sealed"] = True
        if self.unit is not None:
            body["unit"] = self.unit
        return body

    def payload_digests(self) -> dict[str, str]:
        """The digest of each payload field, as the hash covers them: from the field's value
        and salt, or, for a redacted field (which must hold ``[redacted]``), the digest its seal
        kept."""
        seal = self.seal or {}
        payload = self.payload
        names = sorted(seal) if seal.keys() == payload.keys() else sorted(seal.keys() | payload)
        digests: dict[str, str] = {}
        for name in names:
            kept = seal.get(name, "")
            if kept.startswith(REDACTED_PREFIX) and self.payload.get(name) == REDACTED:
                digests[name] = kept[len(REDACTED_PREFIX) :]
            elif kept.startswith(SALT_PREFIX) and name in self.payload:
                digests[name] = field_digest(kept[len(SALT_PREFIX) :], self.payload[name])
            else:  # a field without its salt, or a salt without its field: the hash will differ
                digests[name] = ""
        return digests

    def redacted_fields(self) -> list[str]:
        """The payload fields of this row that were redacted."""
        return sorted(k for k, v in (self.seal or {}).items() if v.startswith(REDACTED_PREFIX))

    def compute_hash(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()

    def canonical(self) -> str:
        """The canonical JSON of :meth:`body`, written out in its sorted key order: the top
        level's keys are known, so only its nested values go through the generic encoder."""
        j = _atom
        # the text fields every row has, spelled by the string encoder itself when they are text
        s = json_text if {*map(type, _TEXT_FIELDS(self))} == _ONLY_STR else _atom
        if self.seal is None:
            payload = canonical_json(self.payload)
        else:
            digests = self.payload_digests()
            fields = (f"{json_text(k)}:{json_text(v)}" for k, v in digests.items())
            payload = "{" + ",".join(fields) + "}"
        return "".join(
            (
                f'{{"actor":{canonical_json(self.actor)},"command_id":{j(self.command_id)},',
                "" if self.deadline is None else f'"deadline":{canonical_json(self.deadline)},',
                f'"definition_hash":{s(self.definition_hash)},'
                f'"instance_id":{s(self.instance_id)},"occurred_at":{s(self.occurred_at)},'
                f'"parent_id":{j(self.parent_id)},"payload":{payload},',
                "" if self.seal is None else '"payload_sealed":true,',
                f'"prev_hash":{s(self.prev_hash)},"reason":{j(self.reason)},'
                f'"recorded_at":{s(self.recorded_at)},"role":{s(self.role)},"seq":{j(self.seq)},'
                f'"source":{j(self.source)},"target":{s(self.target)},'
                f'"trigger":{s(self.trigger)},',
                "" if self.unit is None else f'"unit":{j(self.unit)},',
                f'"visibility":{s(self.visibility)},',
                "" if self.warnings is None else f'"warnings":{canonical_json(self.warnings)},',
                f'"workflow":{s(self.workflow)},"workflow_version":{j(self.workflow_version)}}}',
            )
        )

    def sealed(self) -> HistoryEntry:
        object.__setattr__(self, "hash", self.compute_hash())  # sealed once, before anyone sees it
        return self

    def to_dict(self) -> dict[str, Any]:
        """Every field as stored (what an export carries and :class:`HistoryEntry` reads back);
        ``deadline``, ``warnings`` and ``seal`` only when set."""
        out = {
            **self.body(),
            "payload": self.payload,
            "hash": self.hash,
        }
        out.pop("payload_sealed", None)
        if self.seal is not None:
            out["seal"] = self.seal
        return out


_TEXT_FIELDS = operator.attrgetter(
    "definition_hash",
    "instance_id",
    "occurred_at",
    "prev_hash",
    "recorded_at",
    "role",
    "target",
    "trigger",
    "visibility",
    "workflow",
)
_ONLY_STR = {str}

SALT_PREFIX = "salt:"
REDACTED_PREFIX = "redacted:"
REDACTED = "[redacted]"  # what a redacted payload or data field holds in place of its value


def field_digest(salt: str, value: Any) -> str:
    """The digest a sealed row keeps of one payload field: SHA-256 over a random salt and the
    value's canonical JSON. The salt makes a short value (a phone number) impossible to find
    again by trying every candidate once the value and its salt are removed."""
    return hashlib.sha256(f"{salt}:{_atom(value)}".encode()).hexdigest()


def new_seal(payload: dict[str, Any]) -> dict[str, str]:
    """A fresh salt for each field of ``payload``: 16 random bytes each, drawn at once."""
    drawn = os.urandom(16 * len(payload)).hex()
    return {name: SALT_PREFIX + drawn[32 * k : 32 * k + 32] for k, name in enumerate(payload)}


# not frozen, for the cost of building it on every step (see xieshang.records.HistoryEntry)
@dataclass(slots=True, unsafe_hash=True)
class EventRecord:
    """An outbox row: one CloudEvent, written in the same transaction as its history row."""

    id: str
    instance_id: str
    seq: int
    type: str
    org: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TimerRecord:
    """A pending timer: at ``due_at``, fire ``trigger`` on the instance (set at ``version``).

    ``kind`` is ``timer`` (fires a trigger), ``deadline`` (marks the instance overdue) or
    ``reminder`` (records a ``remind`` row and emits its event before a deadline). A timer
    whose instance has moved on is stale: firing it with ``expected_version=version``
    conflicts, so it can never fire twice.
    ``basis`` is the calendar its date was counted on (:mod:`xieshang.schedules`), or None when
    the date does not depend on which days are working days.
    """

    instance_id: str
    kind: str
    trigger: str
    due_at: datetime
    version: int
    org: str = ""
    basis: str | None = None


@dataclass(slots=True)
class Commit:
    """Everything one command writes, atomically: all of it or none of it.

    ``consume_timers`` are timers this commit fires: each is deleted, and if one is no longer
    there (another worker fired it first) the whole commit fails with ConcurrencyConflict.
    ``touch`` holds (parent id, children_version read): each parent's ``children_version`` is
    bumped only if it still has that value, else ConcurrencyConflict. Every child step touches
    its parent, so two children finishing at once cannot both miss the join they complete
    together. Ordinary updates never write ``children_version``.
    ``clear_timers`` names instances whose pending timers are deleted (they left the state the
    timers belonged to, or its deadline moved) before ``timers`` are added.
    ``readers`` maps an instance id to its new reader principals and levels, replacing the
    stored ones (only instances whose readers changed are named).
    ``reseal`` holds history rows written before whose payload and seal are replaced (a
    redaction): the row with that instance, seq and hash gets the new payload and seal, and its
    hash, which the seal keeps true, does not change; a row not found fails the commit.
    ``duties`` are the members' duty records its history rows earn (:mod:`xieshang.duties`).
    """

    inserts: list[Instance] = field(default_factory=list)
    updates: list[tuple[Instance, int]] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    timers: list[TimerRecord] = field(default_factory=list)
    clear_timers: list[str] = field(default_factory=list)
    consume_timers: list[TimerRecord] = field(default_factory=list)
    touch: list[tuple[str, int]] = field(default_factory=list)
    readers: dict[str, dict[str, int]] = field(default_factory=dict)
    reseal: list[HistoryEntry] = field(default_factory=list)
    duties: list[DutyRecord] = field(default_factory=list)
