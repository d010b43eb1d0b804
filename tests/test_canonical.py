"""The canonical JSON every hash covers, the copies of instance data, and payload salts.

The canonical form is ``json.dumps`` with sorted keys, no ASCII escaping and no spaces: the
encoder built once must give the same text for every JSON value (unicode, floats, integers
beyond 64 bits, nesting). A copy of data is equal to it and shares no dict or list with it.
The ledger rows a store writes chain each entry's hash to the one before.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from xieshang.ledger import LedgerEntry, append_entries, append_rows
from xieshang.records import (
    SALT_PREFIX,
    Commit,
    HistoryEntry,
    canonical_json,
    copy_json,
    new_seal,
)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=20,
)


@settings(max_examples=400)
@given(JSON)
def test_canonical_json_is_json_dumps_with_the_canonical_options(value: Any) -> None:
    expected = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert canonical_json(value) == expected


def _containers(value: Any) -> list[int]:
    if isinstance(value, dict):
        return [id(value), *(i for v in value.values() for i in _containers(v))]
    if isinstance(value, list):
        return [id(value), *(i for v in value for i in _containers(v))]
    return []


@given(JSON)
def test_a_copy_of_data_is_equal_and_shares_no_container(value: Any) -> None:
    copied = copy_json(value)
    assert canonical_json(copied) == canonical_json(value)
    assert json.dumps(copied) == json.dumps(value)  # keys in the order they had
    assert not set(_containers(copied)) & set(_containers(value))


def test_each_payload_field_gets_its_own_salt_of_16_random_bytes() -> None:
    seal = new_seal({"a": 1, "b": 2, "c": 3})
    assert list(seal) == ["a", "b", "c"]
    assert all(re.fullmatch(SALT_PREFIX + "[0-9a-f]{32}", s) for s in seal.values())
    assert len(set(seal.values())) == 3
    assert new_seal({}) == {}


TEXT = st.text() | st.sampled_from(["", "gy", "贵阳市政协", 'quote " and \\ back', "\u2028"])


@settings(max_examples=300)
@given(
    position=st.integers(1, 2**63 - 1),
    seq=st.integers(1, 2**31),
    instance_id=TEXT,
    org=TEXT,
    row_hash=TEXT,
    prev_hash=TEXT,
)
def test_a_ledger_entry_spells_its_body_as_the_canonical_json(
    position: int, seq: int, instance_id: str, org: str, row_hash: str, prev_hash: str
) -> None:
    entry = LedgerEntry(position, instance_id, seq, org, row_hash, prev_hash)
    assert entry.canonical() == canonical_json(entry.body())


OPTIONAL_TEXT = st.none() | TEXT
ATOM = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT


@settings(max_examples=300)
@given(
    texts=st.lists(TEXT, min_size=9, max_size=9),
    odd=st.none() | st.tuples(st.integers(0, 8), st.none() | st.integers() | st.booleans()),
    optional=st.lists(OPTIONAL_TEXT, min_size=4, max_size=4),
    numbers=st.tuples(st.integers(1, 2**40), st.integers(1, 2**31) | st.booleans()),
    actor=st.dictionaries(TEXT, ATOM | st.lists(TEXT, max_size=3), max_size=4),
    payload=st.dictionaries(TEXT, JSON, max_size=4),
    sealed=st.booleans(),
    deadline=st.none() | st.dictionaries(TEXT, ATOM, max_size=3),
    warnings=st.none() | st.lists(st.dictionaries(TEXT, TEXT, max_size=2), max_size=2),
    unit=OPTIONAL_TEXT,
)
def test_a_history_row_spells_its_body_as_the_canonical_json(
    texts: list[Any],
    odd: tuple[int, Any] | None,
    optional: list[str | None],
    numbers: tuple[int, int | bool],
    actor: dict[str, Any],
    payload: dict[str, Any],
    sealed: bool,
    deadline: dict[str, Any] | None,
    warnings: list[dict[str, str]] | None,
    unit: str | None,
) -> None:
    if odd is not None:  # a row read back with a field of another type is spelled the same
        texts[odd[0]] = odd[1]
    instance_id, workflow, definition_hash, trigger, target, role, visibility, at, prev = texts
    source, reason, command_id, parent_id = optional
    seq, version = numbers
    row = HistoryEntry(
        instance_id, seq, workflow, version, definition_hash, trigger, source, target, actor,  # type: ignore[arg-type]
        role, reason, payload, visibility, at, at, command_id, prev, parent_id=parent_id,
        deadline=deadline, warnings=warnings, seal=new_seal(payload) if sealed else None,
        unit=unit,
    )  # fmt: skip
    assert row.canonical() == canonical_json(row.body())


@settings(max_examples=200)
@given(
    head=st.tuples(st.integers(0, 2**40), TEXT),
    rows=st.lists(st.tuples(TEXT, st.integers(1, 2**31), TEXT), min_size=1, max_size=5),
)
def test_the_ledger_rows_a_store_writes_chain_each_entry_to_the_one_before(
    head: tuple[int, str], rows: list[tuple[str, int, str]]
) -> None:
    history = [
        HistoryEntry(iid, seq, "w", 1, "d", "t", None, "s", {}, "r", None, {}, "public", "a", "a",
                     None, "", hash=row_hash)
        for iid, seq, row_hash in rows
    ]  # fmt: skip
    written = append_rows(Commit(history=history), head)
    position, prev = head
    for (iid, seq, row_hash), fields in zip(rows, written, strict=True):
        position += 1
        body = {"position": position, "instance_id": iid, "seq": seq, "org": "",
                "row_hash": row_hash, "prev_hash": prev}  # fmt: skip
        digest = hashlib.sha256(canonical_json(body).encode()).hexdigest()
        assert fields == (position, iid, seq, "", row_hash, prev, digest)
        prev = digest
    assert [LedgerEntry(*f) for f in written] == append_entries(Commit(history=history), head)
