"""Rows to records and back, by column name: the ``instances`` and ``history`` tables.

Statements select and insert the columns named here, in this order, so a row read from the
driver is bound to its names once (:class:`InstanceRow`) and read by name from then on.
"""

from __future__ import annotations

import dataclasses
import json
import operator
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from xieshang import HistoryEntry, Instance
from xieshang.shared import iso

__all__ = [
    "HISTORY_COLUMNS",
    "INSTANCE_COLUMNS",
    "InstanceRow",
    "dump",
    "entry",
    "history_values",
    "insert_values",
    "instance",
    "instance_of",
    "instance_row",
    "parse",
    "parsed",
]

_STDLIB = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# what orjson would write otherwise than the standard encoder reads (dates, dataclasses and
# subclasses of str, int, dict, list) goes to the standard encoder, which writes it or raises
_PASS = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def _other(value: Any) -> Any:
    raise TypeError(type(value).__name__)


def dump(value: Any) -> str:
    """The JSON text a column keeps: compact, keys in their order, Unicode as is.

    Written by orjson, several times faster than the standard encoder for the dozen values a
    step writes. Its text reads back as the same value: what the store keeps has passed the
    door (no NaN or infinity, integers within 64 bits, text keys; see ``xieshang.inputs``) and
    its schema. A value orjson refuses (a key that is not text, an integer beyond 64 bits, a
    type of its own) is written by the standard encoder, which writes it or raises TypeError
    as before. Hashes never cover this text: they cover ``canonical_json``.
    """
    try:
        return orjson.dumps(value, default=_other, option=_PASS).decode()
    except TypeError:
        return _STDLIB(value)


# a run of digits that may be an integer orjson would read as a float (beyond 64 bits): found as
# a run of zeros once the UTF-8 bytes' digits are all made zeros (four times cheaper than a
# regular expression; no byte of a character beyond ASCII is a digit)
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19


def parse(text: str) -> Any:
    """A column's JSON text as its value: what ``json.loads`` gives. Read by orjson, several
    times faster, unless the text holds what orjson reads otherwise or refuses: a run of 19
    digits or more (an integer beyond 64 bits would become a float), NaN or infinities, lone
    surrogates, nesting past orjson's limit; the standard reader takes those as before."""
    if _LONG_NUMBER not in text.encode("utf-8", "surrogatepass").translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


class InstanceRow(NamedTuple):
    """An ``instances`` row as the store caches it: moments parsed, ``data`` kept as JSON text.

    Its fields are the table's columns and :class:`xieshang.Instance`'s fields, by name.
    """

    id: str
    workflow: str
    workflow_version: int
    definition_hash: str
    org: str
    state: str
    data: str
    version: int
    created_at: datetime
    updated_at: datetime
    entered_at: datetime
    final: bool
    due_at: datetime | None
    overdue: bool
    parent_id: str | None
    unit: str | None
    head_hash: str
    children_version: int
    due_basis: str | None
    suspended_at: datetime | None


INSTANCE_COLUMNS: tuple[str, ...] = InstanceRow._fields
_ROW = InstanceRow._make  # a row from its values in column order, without naming each
HISTORY_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(HistoryEntry))
_HISTORY_JSON = frozenset({"actor", "payload"})
_HISTORY_OPTIONAL_JSON = frozenset({"deadline", "warnings", "seal"})  # NULL when not set


def _dt(text: Any) -> datetime:
    """A moment from the ISO text the driver returns."""
    return datetime.fromisoformat(text)


def instance_row(i: Instance) -> InstanceRow:
    """The cache row of an instance."""
    return _ROW((
        i.id, i.workflow, i.workflow_version, i.definition_hash, i.org, i.state, dump(i.data),
        i.version, i.created_at, i.updated_at, i.entered_at, i.final, i.due_at, i.overdue,
        i.parent_id, i.unit, i.head_hash, i.children_version, i.due_basis, i.suspended_at,
    ))  # fmt: skip


def insert_values(row: InstanceRow) -> tuple[Any, ...]:
    """The values to insert for a cache row, in :data:`INSTANCE_COLUMNS` order: moments as ISO
    text."""
    values = row._asdict()
    for name in ("created_at", "updated_at", "entered_at"):
        values[name] = iso(values[name])
    if row.due_at is not None:
        values["due_at"] = iso(row.due_at)
    if row.suspended_at is not None:
        values["suspended_at"] = iso(row.suspended_at)
    return tuple(values.values())


def parsed(values: Sequence[Any]) -> InstanceRow:
    """A cache row from the values of a select of :data:`INSTANCE_COLUMNS`: moments parsed,
    booleans made bool."""
    raw = InstanceRow._make(values)
    due, suspended = raw.due_at, raw.suspended_at
    return raw._replace(
        suspended_at=_dt(suspended) if suspended is not None else None,
        created_at=_dt(raw.created_at),
        updated_at=_dt(raw.updated_at),
        entered_at=_dt(raw.entered_at),
        final=bool(raw.final),
        due_at=_dt(due) if due is not None else None,
        overdue=bool(raw.overdue),
    )


def instance(row: InstanceRow) -> Instance:
    """The instance a cache row holds (a fresh copy: its data parsed anew)."""
    return Instance(
        row.id, row.workflow, row.workflow_version, row.definition_hash, row.org, row.state,
        parse(row.data), row.version, row.created_at, row.updated_at, row.entered_at,
        row.final, row.due_at, row.overdue, row.parent_id, row.unit, row.head_hash,
        row.children_version, row.due_basis, row.suspended_at,
    )  # fmt: skip


def instance_of(values: Sequence[Any]) -> Instance:
    """The instance a select of :data:`INSTANCE_COLUMNS` gives, without a cache row between:
    what :func:`instance` of :func:`parsed` gives, in one pass (a page of query results is
    made of these, and their making costs more than the database's reading)."""
    (iid, workflow, workflow_version, definition_hash, org, state, data, version, created,
     updated, entered, final, due, overdue, parent_id, unit, head_hash, children_version,
     due_basis, suspended) = values  # fmt: skip
    at = datetime.fromisoformat
    fields = parse(data)
    return Instance(
        iid, workflow, workflow_version, definition_hash, org, state, fields, version,
        at(created), at(updated), at(entered), bool(final), None if due is None else at(due),
        bool(overdue), parent_id, unit, head_hash, children_version, due_basis,
        None if suspended is None else at(suspended),
    )  # fmt: skip


_HISTORY_FIELDS = operator.attrgetter(*HISTORY_COLUMNS)
_JSON_AT = tuple(k for k, name in enumerate(HISTORY_COLUMNS) if name in _HISTORY_JSON)
_OPTIONAL_JSON_AT = tuple(
    k for k, name in enumerate(HISTORY_COLUMNS) if name in _HISTORY_OPTIONAL_JSON
)


def history_values(e: HistoryEntry) -> list[Any]:
    """The values to insert for a history entry, in :data:`HISTORY_COLUMNS` order."""
    values = list(_HISTORY_FIELDS(e))
    for k in _JSON_AT:
        values[k] = dump(values[k])
    for k in _OPTIONAL_JSON_AT:
        if values[k] is not None:
            values[k] = dump(values[k])
    return values


def entry(values: Sequence[Any]) -> HistoryEntry:
    """A history entry from the values of a select of :data:`HISTORY_COLUMNS`."""
    fields = dict(zip(HISTORY_COLUMNS, values, strict=True))
    for name in _HISTORY_JSON:
        fields[name] = parse(fields[name])
    for name in _HISTORY_OPTIONAL_JSON:
        if fields[name] is not None:
            fields[name] = parse(fields[name])
    return HistoryEntry(**fields)
