"""An instance row read back is the instance written: whether it goes through the cache row
(:func:`parsed`, then :func:`instance`) or straight to the instance (:func:`instance_of`, how a
query's page is read), and whatever JSON text its data holds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from xieshang import Instance
from xieshang.adapters.sql.rows import (
    insert_values,
    instance,
    instance_of,
    instance_row,
    parsed,
)
from xieshang.records import iso

TEXT = st.text(max_size=8)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
MOMENTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8))]),
)  # fmt: skip
INSTANCES = st.builds(
    Instance,
    id=TEXT, workflow=TEXT, workflow_version=st.integers(1, 9), definition_hash=TEXT, org=TEXT,
    state=TEXT, data=st.dictionaries(TEXT, JSON, max_size=4), version=st.integers(1, 10**6),
    created_at=MOMENTS, updated_at=MOMENTS, entered_at=MOMENTS, final=st.booleans(),
    due_at=st.none() | MOMENTS, overdue=st.booleans(), parent_id=st.none() | TEXT,
    unit=st.none() | TEXT, head_hash=TEXT, children_version=st.integers(0, 99),
    due_basis=st.none() | TEXT, suspended_at=st.none() | MOMENTS,
)  # fmt: skip


@given(INSTANCES)
def test_a_row_read_back_either_way_is_the_instance_written(written: Instance) -> None:
    values = insert_values(instance_row(written))  # what the store inserts
    as_driver_gives = [int(v) if isinstance(v, bool) else v for v in values]  # SQLite's 0 / 1
    assert instance_of(as_driver_gives) == written
    assert instance(parsed(as_driver_gives)) == written


@given(INSTANCES, st.sampled_from([" ", "\n", "  \t"]))
def test_data_written_with_spaces_by_another_hand_reads_the_same(
    written: Instance, space: str
) -> None:
    """The quick read of the data text takes the store's own compact JSON; any other text
    (spaces around it, indented) is read as JSON all the same."""
    values = list(insert_values(instance_row(written)))
    values[6] = space + json.dumps(written.data, indent=1, ensure_ascii=True) + space
    assert instance_of(values) == written


@given(MOMENTS | st.datetimes(timezones=st.just(UTC)).map(lambda m: m.replace(microsecond=0)))
def test_a_moment_is_spelled_in_utc_with_its_microseconds_even_when_they_are_zero(
    moment: datetime,
) -> None:
    text = iso(moment)
    assert text == moment.astimezone(UTC).isoformat(timespec="microseconds")
    assert len(text) == len("2026-11-30T04:00:00.000000+00:00")


@given(st.lists(MOMENTS, min_size=1, max_size=4), st.lists(st.integers(0, 3), max_size=12))
def test_a_moment_is_spelled_as_itself_whatever_was_spelled_before(
    moments: list[datetime], picks: list[int]
) -> None:
    """Spelling a few moments over and over, in any order, spells each as it is: the moments
    spelled just before never answer for another."""
    for k in picks:
        moment = moments[k % len(moments)]
        assert iso(moment) == moment.astimezone(UTC).isoformat(timespec="microseconds")
