"""The JSON a store writes: column texts read back as the values written, hashes cover one text
for a value whatever wrote it, and a number no JSON can spell never reaches either."""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from xieshang import Actor, Engine, InvalidPayload, Registry
from xieshang.adapters.memory import MemoryStore
from xieshang.adapters.sql import open_store
from xieshang.adapters.sql.rows import dump, parse
from xieshang.inputs import MAX_INT, input_errors
from xieshang.records import canonical_json

TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-MAX_INT, MAX_INT)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)


def stdlib_canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_a_column_text_reads_back_as_the_value_written(value: Any) -> None:
    assert not input_errors(value)  # what the door lets in
    text = dump(value)
    assert json.loads(text) == value
    assert json.loads(text) == json.loads(json.dumps(value, ensure_ascii=False))
    assert text == text.strip()  # the store reads a value that fills its column exactly


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_a_hashed_text_is_the_standard_encoders_to_the_byte(value: Any) -> None:
    # rows hashed before stay verifiable: the text a hash covers never changes
    assert canonical_json(value) == stdlib_canonical(value)


def test_small_and_large_floats_hash_as_the_standard_encoder_spells_them() -> None:
    value = {"b": [1e-05, 1e16, -0.0, 5e-324, 0.1], "a": "é\u2028\n"}
    assert canonical_json(value) == '{"a":"é\u2028\\n","b":[1e-05,1e+16,-0.0,5e-324,0.1]}'


class Colour(enum.StrEnum):
    RED = "red"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({1: "a"}, '{"1":"a"}'),  # a key that is not text: written as the standard encoder does
        ([2**70], "[1180591620717411303424]"),  # beyond 64 bits
        ({"c": Colour.RED}, '{"c":"red"}'),  # a subclass of str
    ],
)
def test_what_the_fast_writer_refuses_is_written_as_before(value: Any, text: str) -> None:
    assert dump(value) == text == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


STORED = st.recursive(  # what a column may hold, written by anything: long numbers too
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**17, max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]))
    | st.from_regex(r"[0-9]{15,25}", fullmatch=True),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(STORED, st.booleans())
@example({"n": 18446744073709551616, "m": [-(10**22)]}, False)  # just beyond 64 bits, and far
@example({"s": "1" * 30, "t": "\ud800"}, True)  # a long run of digits in a text, an escape
def test_any_stored_value_is_read_as_the_standard_reader_reads_it(value: Any, ascii: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii, separators=(",", ":"))
    read = parse(text)
    assert read == json.loads(text)
    assert json.dumps(read) == json.dumps(json.loads(text))  # an integer stays an integer


@pytest.mark.parametrize("value", [{"d": date(2026, 1, 1)}, {"o": object()}, {1.5j}])
def test_what_no_json_holds_raises_type_error_as_before(value: Any) -> None:
    with pytest.raises(TypeError, match="is not JSON serializable"):
        dump(value)
    with pytest.raises(TypeError, match="is not JSON serializable"):
        canonical_json(value)


# effects multiply payload numbers: 1e308 times ten is no number JSON can spell, and 2**40
# squared is no integer a store keeps (expressions count in 64 bits, as CEL does)
GAUGE = """
id: gauge
version: 1
title: {zh: 量表, en: Gauge}
roles:
  clerk: {zh: 办事员}
start:
  roles: [clerk]
data:
  reading: {type: number}
  count: {type: int}
states:
  open: {initial: true, label: {zh: 待读}}
  read: {final: true, label: {zh: 已读}}
transitions:
  - trigger: measure
    from: open
    to: read
    roles: [clerk]
    payload:
      x: {type: number, required: true}
    set: {reading: payload.x * 10.0}
  - trigger: square
    from: open
    to: open
    roles: [clerk]
    payload:
      n: {type: int, required: true}
    set: {count: payload.n * payload.n}
"""
CLERK = Actor.of("c1", "clerk", org="city")


@pytest.fixture(params=["memory", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    registry = Registry.from_texts([("gauge.yaml", GAUGE)])
    if request.param == "memory":
        yield Engine(MemoryStore(), registry)
        return
    with open_store(f"sqlite:///{tmp_path / 'x.db'}") as store:
        yield Engine(store, registry)


def test_an_effect_that_overflows_a_number_is_refused_and_writes_nothing(engine: Engine) -> None:
    i = engine.start("gauge", {}, CLERK)
    with pytest.raises(InvalidPayload) as refused:
        engine.fire(i.id, "measure", CLERK, {"x": 1e308})
    assert "reading" in str(refused.value) and "finite" in str(refused.value)
    assert engine.get(i.id, CLERK).state == "open"
    assert len(engine.history(i.id, CLERK)) == 1
    done = engine.fire(i.id, "measure", CLERK, {"x": 1.5})
    assert done.state == "read" and math.isclose(done.data["reading"], 15.0)


def test_an_effect_that_overflows_an_integer_is_refused_and_writes_nothing(engine: Engine) -> None:
    i = engine.start("gauge", {}, CLERK)
    with pytest.raises(InvalidPayload) as refused:
        engine.fire(i.id, "square", CLERK, {"n": 2**40})  # 2**80: beyond what a store keeps
    assert "count" in str(refused.value) and "overflow" in str(refused.value)
    assert len(engine.history(i.id, CLERK)) == 1
    assert engine.fire(i.id, "square", CLERK, {"n": 3}).data["count"] == 9


NUMBER_TEXTS = st.one_of(
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.from_regex(r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e-400", '"\\ud800"', " 1 "]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(NUMBER_TEXTS | VALUES.map(json.dumps), max_size=4))
def test_a_column_text_is_read_as_the_standard_reader_reads_it(parts: list[str]) -> None:
    """Texts written by the store or by anyone: numbers of every length and spelling, what
    only the standard reader accepts, whitespace. Equal as JSON, and each number of the same
    type (an integer beyond 64 bits stays an integer)."""
    text = "[" + ", ".join(parts) + "]"
    expected = json.loads(text)
    found = parse(text)
    assert json.dumps(found) == json.dumps(expected)
    assert [type(v) for v in found] == [type(v) for v in expected]
