"""The Python API's doors: what no store can keep is refused with its typed error, naming the
place and what is allowed, and nothing is written, on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xieshang import (
    Actor,
    ConcurrencyConflict,
    ConflictCase,
    Engine,
    FixedClock,
    InvalidPayload,
    NotFound,
    Usage,
)
from xieshang.adapters.memory import MemoryStore
from xieshang.workflows import bundled

ORG = "贵阳市政协"
MEMBER = Actor.of("m1", "member", org=ORG)
STAFF = Actor.of("s1", "proposal_committee", org=ORG)
DATA = {"title": "关于加强农村教育的建议", "first_proposer": "m1"}


def nested(levels: int) -> Any:
    value: Any = "底"
    for _ in range(levels):
        value = {"a": value}
    return value


def written(engine: Engine) -> tuple[int, int, int]:
    """How many instances, history rows and events the store holds."""
    ids = list(engine.store.instance_ids())
    rows = sum(len(engine.store.history(i)) for i in ids)
    return len(ids), rows, len(engine.store.outbox())


POISON: list[tuple[str, Any, str]] = [
    ("nested 3000", nested(3000), "nests deeper than 32 levels"),
    ("nested 5000", nested(5000), "nests deeper than 32 levels"),
    ("NUL", "a\x00b", "NUL character (U+0000)"),
    ("NaN", math.nan, "not a finite number"),
    ("1e999", float("1e999"), "not a finite number"),
    ("-inf", -math.inf, "not a finite number"),
    ("surrogate", "a\ud800b", "lone surrogate"),
    ("huge int", 10**5000, "beyond 64 bits"),
    ("a set", {1, 2}, "not a JSON value"),
]


@pytest.mark.parametrize(("case", "value", "message"), POISON, ids=[p[0] for p in POISON])
def test_start_refuses_data_no_store_keeps_and_writes_nothing(
    engine: Engine, case: str, value: Any, message: str
) -> None:
    """Start data holding what no store keeps is InvalidPayload naming the field; no row."""
    before = written(engine)
    with pytest.raises(InvalidPayload) as refused:
        engine.start("proposal", {**DATA, "title": value}, MEMBER)
    assert refused.value.errors[0]["field"].startswith("title")
    assert message in refused.value.message
    assert written(engine) == before


@pytest.mark.parametrize(("case", "value", "message"), POISON, ids=[p[0] for p in POISON])
def test_fire_refuses_a_payload_no_store_keeps_and_writes_nothing(
    engine: Engine, case: str, value: Any, message: str
) -> None:
    """A payload holding what no store keeps is InvalidPayload; the instance stays as it was."""
    pid = engine.start("proposal", DATA, MEMBER).id
    before = written(engine)
    with pytest.raises(InvalidPayload) as refused:
        engine.fire(pid, "submit", MEMBER, {"category": "society", "extra": [value]})
    assert refused.value.errors[0]["field"].startswith("extra[0]")
    assert message in refused.value.message
    assert written(engine) == before
    assert engine.get(pid).version == 1


def test_a_nul_in_a_reason_is_refused_before_the_store_sees_it(engine: Engine) -> None:
    """A reason with NUL (which PostgreSQL text refuses) is InvalidPayload naming 'reason'."""
    pid = engine.start("proposal", DATA, MEMBER).id
    engine.fire(pid, "submit", MEMBER, {"category": "society"})
    before = written(engine)
    with pytest.raises(InvalidPayload) as refused:
        engine.fire(pid, "return_for_revision", STAFF, reason="请补充\x00材料")
    assert refused.value.errors == [
        {
            "field": "reason",
            "error": "holds a NUL character (U+0000), which no text may hold",
            "got": "'请补充\\x00材料' that is a str",
        }
    ]
    assert written(engine) == before


@pytest.mark.parametrize("payload", [[1, 2], "category=society", 42, b"{}"])
def test_a_payload_that_is_not_a_mapping_is_invalid_payload(engine: Engine, payload: Any) -> None:
    """A list, text, a number or bytes as payload or data is InvalidPayload, never a TypeError."""
    pid = engine.start("proposal", DATA, MEMBER).id
    before = written(engine)
    with pytest.raises(InvalidPayload, match="must be an object of field names to values"):
        engine.fire(pid, "submit", MEMBER, payload)
    with pytest.raises(InvalidPayload, match="must be an object of field names to values"):
        engine.start("proposal", payload, MEMBER)
    assert written(engine) == before


def test_ids_and_actors_with_nul_are_refused_as_what_they_are(engine: Engine) -> None:
    """An instance id no instance can have is NotFound; an actor with NUL is InvalidPayload; a
    command id or an org of the wrong type is Usage; none reaches the store."""
    pid = engine.start("proposal", DATA, MEMBER).id
    before = written(engine)
    with pytest.raises(NotFound, match="no instance"):
        engine.fire(pid + "\x00", "submit", MEMBER, {"category": "society"})
    with pytest.raises(NotFound):
        engine.get("\x00")
    with pytest.raises(NotFound):
        engine.verify("x\x00")
    with pytest.raises(InvalidPayload, match="actor") as bad_actor:
        engine.fire(pid, "submit", Actor.of("m1\x00", "member", org=ORG), {"category": "society"})
    assert bad_actor.value.errors[0]["field"] == "id"
    with pytest.raises(Usage, match="command_id must be text"):
        engine.fire(pid, "submit", MEMBER, {"category": "society"}, command_id=7)  # type: ignore[arg-type]
    with pytest.raises(Usage, match="the actor must be an Actor"):
        engine.start("proposal", DATA, "m1:member")  # type: ignore[arg-type]
    with pytest.raises(Usage, match="invalid query: state: holds a NUL"):
        engine.query(state="submitted\x00")
    assert written(engine) == before


# -- command ids: the same request, or a conflict naming what differs ----------------------------


def test_a_command_id_answers_only_the_same_request(engine: Engine) -> None:
    """The same id with the same request returns the first result and writes no row; with
    another payload, trigger, instance or workflow it is a command-used conflict naming what
    differs, and nothing is written."""
    pid = engine.start("proposal", DATA, MEMBER, command_id="s-1").id
    again = engine.start("proposal", dict(DATA), MEMBER, command_id="s-1")
    assert again.id == pid
    first = engine.fire(pid, "submit", MEMBER, {"category": "society"}, command_id="c-1")
    before = written(engine)
    same = engine.fire(pid, "submit", MEMBER, {"category": "society"}, command_id="c-1")
    assert (same.version, same.state) == (first.version, first.state) == (2, "submitted")
    other = engine.start("proposal", DATA, MEMBER).id
    cases = [
        (
            "payload",
            lambda: engine.fire(pid, "submit", MEMBER, {"category": "economy"}, command_id="c-1"),
        ),
        ("trigger", lambda: engine.fire(pid, "withdraw", MEMBER, reason="r", command_id="c-1")),
        (
            "instance",
            lambda: engine.fire(other, "submit", MEMBER, {"category": "society"}, command_id="c-1"),
        ),
        (
            "payload",
            lambda: engine.start("proposal", {**DATA, "title": "另一件"}, MEMBER, command_id="s-1"),
        ),
        ("workflow", lambda: engine.start("opinion_report", {}, MEMBER, command_id="s-1")),
    ]
    after_other = written(engine)
    for differs, call in cases:
        with pytest.raises(ConcurrencyConflict) as conflict:
            call()
        assert conflict.value.case is ConflictCase.COMMAND_USED
        assert conflict.value.differs == differs, differs
        assert f"a command with another {differs}" in conflict.value.message
    assert written(engine) == after_other
    assert after_other[0] == before[0] + 1


def test_a_command_id_binds_the_reason_too(engine: Engine) -> None:
    """A step that takes a reason: the same id with another reason is refused."""
    pid = engine.start("proposal", DATA, MEMBER).id
    engine.fire(pid, "submit", MEMBER, {"category": "society"})
    engine.fire(pid, "return_for_revision", STAFF, reason="材料不全", command_id="r-1")
    assert engine.fire(pid, "return_for_revision", STAFF, reason="材料不全", command_id="r-1")
    with pytest.raises(ConcurrencyConflict) as conflict:
        engine.fire(pid, "return_for_revision", STAFF, reason="另有原因", command_id="r-1")
    assert conflict.value.differs == "reason"


# -- fuzz: any poisoned value anywhere in a payload is refused ----------------------------------

_POISON = st.sampled_from(
    [math.nan, math.inf, -math.inf, "\x00", "x\x00y", "\ud83d", 2**64, nested(40), {1: "x"}]
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def poisoned(draw: st.DrawFn) -> dict[str, Any]:
    """A JSON payload with one poisoned value put somewhere inside it."""
    poison = draw(_POISON)
    path = draw(st.lists(st.sampled_from(["list", "dict"]), max_size=4))
    value: Any = poison
    for step in reversed(path):
        value = [draw(_JSON), value] if step == "list" else {"k": value, "other": draw(_JSON)}
    return {"category": "society", draw(st.sampled_from(["extra", "note"])): value}


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=poisoned())
def test_fuzz_the_python_api_refuses_every_poisoned_payload(payload: dict[str, Any]) -> None:
    """Wherever a poisoned value sits in a payload, fire is InvalidPayload and writes nothing."""
    engine = Engine(MemoryStore(), bundled(), FixedClock(datetime(2024, 3, 1, 1, tzinfo=UTC)))
    pid = engine.start("proposal", DATA, MEMBER).id
    door = ("NUL", "finite", "surrogate", "64 bits", "nests deeper", "not text")
    with pytest.raises(InvalidPayload) as fired:
        engine.fire(pid, "submit", MEMBER, payload)
    with pytest.raises(InvalidPayload) as started:
        engine.start("proposal", {**DATA, "extra": payload}, MEMBER)
    for refused in (fired.value, started.value):
        assert any(word in refused.message for word in door), refused.message
    assert written(engine) == (1, 1, len(engine.store.outbox()))
    assert engine.get(pid).version == 1
