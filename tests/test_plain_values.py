"""A plain value (a string for a string field, a list of enums …) skips pydantic: the result,
and what is refused, must be exactly what pydantic gives."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from xieshang.fields import FieldSpec
from xieshang.schema_types import (
    NOT_PLAIN,
    _record,
    annotation_for,
    plain_check,
    record_adapter,
    value_adapter,
)

ENUM = ("economy", "society", "culture")

lengths = st.one_of(st.none(), st.integers(1, 4))
bounds = st.one_of(st.none(), st.integers(-5, 5).map(float), st.floats(-5, 5, allow_nan=False))


@st.composite
def specs(draw: Any) -> FieldSpec:
    kind = draw(st.sampled_from(["string", "text", "bool", "int", "enum", "list", "date"]))
    spec: dict[str, Any] = {"type": kind}
    if kind == "enum":
        spec["values"] = ENUM
    if kind == "list":
        spec["items"] = draw(st.sampled_from(["string", "enum", "int", "bool", "number"]))
        if spec["items"] == "enum":
            spec["item_values"] = ENUM
    if kind in ("string", "text", "list"):
        spec["max_length"] = draw(lengths)
        low = draw(lengths)
        spec["min_length"] = None if low is None else low - 1
    if kind == "int":
        spec["minimum"], spec["maximum"] = draw(bounds), draw(bounds)
    return FieldSpec.model_validate(spec)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10),
    st.integers(),
    st.floats(allow_nan=False),
    st.just(3.0),
    st.text(max_size=6),
    st.sampled_from(ENUM),
    st.just("2026-11-30"),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=5),
    st.lists(st.sampled_from(ENUM), max_size=5),
    st.tuples(st.text(max_size=2)),
    st.dictionaries(st.text(max_size=3), scalars, max_size=2),
)


def fitting(spec: FieldSpec) -> st.SearchStrategy[Any]:
    """Values of the spec's own kind (most of them valid), so that the plain path is taken."""
    one = {
        "string": st.text(max_size=5),
        "text": st.text(max_size=5),
        "bool": st.booleans(),
        "int": st.integers(-8, 8),
        "number": st.floats(-3, 3),
        "enum": st.sampled_from(ENUM),
        "date": st.just("2026-11-30"),
    }
    if spec.type == "list":
        return st.lists(one[spec.items or "string"], max_size=5)
    return one[spec.type]


@st.composite
def records(draw: Any) -> tuple[dict[str, FieldSpec], dict[str, Any]]:
    names = draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=4,
                          unique=True))  # fmt: skip
    fields = {name: draw(specs()) for name in names}
    fields = {k: spec.model_copy(update={"required": draw(st.booleans())})
              for k, spec in fields.items()}  # fmt: skip
    chosen = draw(st.lists(st.sampled_from(names), unique=True))
    value = {name: draw(fitting(fields[name])) for name in chosen}
    if draw(st.integers(0, 9)) == 0:
        value["zz"] = 1
    return fields, value


def pydantic_gives(spec_or_record: Any, value: Any) -> tuple[str, Any]:
    try:
        adapter = TypeAdapter(spec_or_record)
        return "ok", adapter.dump_python(adapter.validate_python(value), mode="json")
    except ValidationError:
        return "refused", None


@given(st.data())
@settings(max_examples=600, deadline=None)
def test_a_plain_value_is_what_pydantic_gives(data: st.DataObject) -> None:
    spec = data.draw(specs())
    value = data.draw(st.one_of(fitting(spec), values))
    plain = plain_check(spec)
    expected = pydantic_gives(annotation_for(spec), value)
    if plain is None:
        assert spec.type == "date" or spec.items in ("number",)
        return
    found = plain(value)
    if found is NOT_PLAIN:
        return  # pydantic judges it
    assert expected == ("ok", found)
    assert type(found) is type(expected[1])
    if isinstance(value, list):
        assert found is not value  # a list is copied, as pydantic copies it
    checked = value_adapter(spec).checked(value)
    assert checked == found


@given(specs(), values)
@settings(max_examples=300, deadline=None)
def test_a_checked_value_is_validated_and_dumped(spec: FieldSpec, value: Any) -> None:
    expected = pydantic_gives(annotation_for(spec), value)
    try:
        got = ("ok", value_adapter(spec).checked(value))
    except ValidationError:
        got = ("refused", None)
    assert got == expected


@given(records(), st.booleans())
@settings(max_examples=400, deadline=None)
def test_a_plain_record_is_what_pydantic_gives_in_the_same_order(
    record: tuple[dict[str, FieldSpec], dict[str, Any]], partial: bool
) -> None:
    fields, value = record
    expected = pydantic_gives(_record("r", fields, partial=partial), value)
    try:
        got = ("ok", record_adapter("r", fields, partial=partial).checked(value))
    except ValidationError:
        got = ("refused", None)
    assert got == expected
    if got[0] == "ok":
        assert list(got[1]) == list(expected[1])  # the record's own field order


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        ({"type": "string", "max_length": 3}, "abcd"),
        ({"type": "enum", "values": ENUM}, "sport"),
        ({"type": "int", "minimum": 1}, 0),
        ({"type": "bool"}, 1),
        ({"type": "list", "items": "string"}, ["a", 1]),
    ],
)
def test_a_value_the_plain_check_does_not_take_is_refused_by_pydantic(
    spec: dict[str, Any], value: Any
) -> None:
    field = FieldSpec.model_validate(spec)
    plain = plain_check(field)
    assert plain is not None and plain(value) is NOT_PLAIN
    with pytest.raises(ValidationError):
        value_adapter(field).checked(value)
