"""One error root: the tree drawn in ``xieshang.errors`` is the real one, and bad input to any
public entry point surfaces as a subclass of :class:`XieshangError`, never a bare ``ValueError``,
``TypeError`` or pydantic ``ValidationError``."""

from __future__ import annotations

import contextlib
import inspect
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xieshang
from xieshang import (
    Actor,
    ConcurrencyConflict,
    ConflictCase,
    Definition,
    Engine,
    FixedClock,
    Registry,
    SettingsError,
    StoreError,
    Usage,
    XieshangError,
    errors,
    load_definition,
    parse_duration,
)
from xieshang.adapters.events import DeliveryFailed, EventSettings, WebhookSink
from xieshang.adapters.memory import MemoryStore
from xieshang.adapters.settings import Settings
from xieshang.adapters.sql import database_url, open_store
from xieshang.workflows import bundled

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)


def _drawn_tree() -> list[tuple[int, str]]:
    """(depth, class name) for each line of the drawing in the errors module's docstring."""
    doc = errors.__doc__ or ""
    block = doc.split("The tree::", 1)[1].split("\n\n", 2)[1]
    rows = []
    for line in block.splitlines():
        m = re.match(r"^    ((?:[│ ]   )*)(?:[├└]── )?(\w+)", line)
        assert m, f"a line of the drawing that is not a node: {line!r}"
        depth = len(m[1]) // 4 + (1 if m[2] != "XieshangError" else 0)
        rows.append((depth, m[2]))
    return rows


def _real_tree(cls: type[XieshangError] = XieshangError, depth: int = 0) -> list[tuple[int, str]]:
    rows = [(depth, cls.__name__)]
    for sub in cls.__subclasses__():
        if sub.__module__ == errors.__name__:
            rows += _real_tree(sub, depth + 1)
    return rows


def test_the_drawn_tree_is_the_tree_of_the_error_classes() -> None:
    """Every error class of xieshang.errors is drawn once, under its real parent."""
    drawn = _drawn_tree()
    assert sorted(drawn) == sorted(_real_tree())
    parents: dict[str, str] = {}
    stack: list[str] = []
    for depth, name in drawn:
        del stack[depth:]
        if stack:
            parents[name] = stack[-1]
        stack.append(name)
    for name, parent in parents.items():
        assert getattr(errors, name).__mro__[1].__name__ == parent, name


def test_every_error_class_is_exported_and_re_exported_where_it_used_to_live() -> None:
    """The store's and the sinks' errors are the engine's, still importable from the adapters."""
    from xieshang.adapters import sql
    from xieshang.adapters.events import sinks

    for _, cls in inspect.getmembers(errors, inspect.isclass):
        if issubclass(cls, XieshangError):
            assert cls.__name__ in xieshang.__all__
    assert sql.StoreError is errors.StoreError
    assert sql.StoreUnavailable is errors.StoreUnavailable
    assert sinks.DeliveryFailed is DeliveryFailed is errors.DeliveryFailed


@given(
    case=st.sampled_from(ConflictCase),
    expected=st.none() | st.integers(0, 10),
    actual=st.none() | st.integers(0, 10),
)
def test_a_conflict_names_its_case_and_never_prints_a_missing_version(
    case: ConflictCase, expected: int | None, actual: int | None
) -> None:
    """The message never says 'None'; the case is an attribute and is in to_dict()."""
    e = ConcurrencyConflict("i-1", expected, actual, case=case)
    assert "None" not in str(e)
    assert "'i-1'" in str(e)
    assert e.case is case
    assert e.to_dict()["case"] == case.value
    if actual is not None and case is not ConflictCase.TIMER_TAKEN:
        assert str(actual) in str(e)


BAD_CALLS: list[tuple[str, Callable[[], Any]]] = [
    ("FixedClock(naive)", lambda: FixedClock(datetime(2024, 1, 1))),
    ("FixedClock(text)", lambda: FixedClock("2024-01-01")),
    (
        "FixedClock.advance(bad keyword)",
        lambda: FixedClock(datetime.now().astimezone()).advance(fortnights=1),
    ),
    ("Actor.from_dict(list)", lambda: Actor.from_dict([1, 2])),
    ("Actor.from_dict(int roles)", lambda: Actor.from_dict({"id": "a", "roles": 3})),
    ("Actor.parse(bad JSON)", lambda: Actor.parse("{nope")),
    ("Actor.parse(no roles)", lambda: Actor.parse("someone")),
    ("Definition(**{})", lambda: Definition()),
    ("Definition.model_validate(list)", lambda: Definition.model_validate([1])),
    ("Definition.model_validate_json", lambda: Definition.model_validate_json("{")),
    ("load_definition(not YAML)", lambda: load_definition("a: [")),
    ("parse_duration(words)", lambda: parse_duration("a while")),
    ("Settings(clock=bad)", lambda: Settings(clock="yesterday")),
    ("Settings(synchronous=OFF)", lambda: Settings(synchronous="OFF")),
    ("EventSettings(ftp)", lambda: EventSettings(webhook_urls=["ftp://x"], webhook_secret="s")),
    ("database_url(mysql)", lambda: database_url("mysql://x/y")),
    ("open_store(memory)", lambda: open_store("sqlite://")),
    ("WebhookSink(no secret)", lambda: WebhookSink("http://a.test/h", "")),
    ("Registry.get(unknown)", lambda: bundled().get("no_such_workflow")),
    (
        "Engine.start(unknown)",
        lambda: Engine(MemoryStore(), bundled()).start("no_such_workflow", {}, Actor.of("a", "r")),
    ),
    (
        "Engine.fire(unknown)",
        lambda: Engine(MemoryStore(), bundled()).fire(
            "no-such-instance", "submit", Actor.of("a", "r")
        ),
    ),
    (
        "Engine.start(data not a mapping)",
        lambda: Engine(MemoryStore(), bundled()).start(
            "proposal", [1, 2], Actor.of("a", "member", org="o")
        ),
    ),
    ("Registry.from_texts(not text)", lambda: Registry.from_texts([("a.yaml", 5)])),
    ("parse_duration(None)", lambda: parse_duration(None)),
    ("load_definition(None)", lambda: load_definition(None)),
    ("Actor.parse(None)", lambda: Actor.parse(None)),
    ("Engine.query(unknown field)", lambda: Engine(MemoryStore(), bundled()).query(colour="red")),
]


@pytest.mark.parametrize("call", [c for _, c in BAD_CALLS], ids=[n for n, _ in BAD_CALLS])
def test_bad_input_to_a_public_entry_point_raises_one_of_ours(call: Callable[[], Any]) -> None:
    """Whatever is wrong, the error is a XieshangError subclass, chained to any foreign cause."""
    with pytest.raises(XieshangError) as caught:
        call()
    assert type(caught.value) is not XieshangError  # a specific subclass, not the bare root


@settings(max_examples=200)
@given(JSON)
def test_any_json_value_is_an_actor_or_an_invalid_payload(value: Any) -> None:
    """Actor.from_dict reads an actor or refuses with InvalidPayload naming the key."""
    try:
        Actor.from_dict(value)
    except xieshang.InvalidPayload as e:
        assert e.errors and e.errors[0]["field"]


@settings(max_examples=100)
@given(JSON)
def test_any_json_value_is_a_definition_or_a_definition_error(value: Any) -> None:
    """Definition.model_validate refuses any shape it cannot read with DefinitionError."""
    try:
        Definition.model_validate(value)
    except xieshang.DefinitionError as e:
        assert e.problems and all(p.code == "XS010" for p in e.problems)


@settings(max_examples=100)
@given(st.text(max_size=40))
def test_any_text_is_a_duration_or_a_calendar_error(text: str) -> None:
    """parse_duration reads a duration or raises CalendarError."""
    with contextlib.suppress(xieshang.CalendarError):
        parse_duration(text)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_a_workflow_or_a_definition_error(text: str) -> None:
    """load_definition compiles a workflow or raises DefinitionError listing the problems."""
    with contextlib.suppress(xieshang.DefinitionError):
        load_definition(text)


@settings(max_examples=100)
@given(st.text(max_size=30))
def test_any_text_is_an_actor_or_an_invalid_payload(text: str) -> None:
    """Actor.parse reads ``id:roles@org/unit`` or JSON, or raises InvalidPayload."""
    with contextlib.suppress(xieshang.InvalidPayload):
        Actor.parse(text)


@settings(max_examples=50)
@given(st.text(max_size=30))
def test_any_text_is_a_database_url_or_a_store_error(text: str) -> None:
    """database_url accepts SQLite files and PostgreSQL, and refuses the rest with StoreError."""
    with contextlib.suppress(StoreError):
        database_url(text or "x")


def test_settings_errors_chain_the_pydantic_error(tmp_path: Path) -> None:
    """The foreign error stays reachable as __cause__ for whoever debugs it."""
    with pytest.raises(SettingsError) as caught:
        Settings(clock="yesterday")
    assert caught.value.__cause__ is not None
    assert caught.value.errors[0]["field"] == "clock"
    with pytest.raises(Usage) as bad:
        FixedClock(datetime(2024, 1, 1))
    assert bad.value.option == "moment"
