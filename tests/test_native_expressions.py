"""Simple expressions run as Python give exactly what CEL gives: the value, or the same error.

Every expression of the bundled workflows that the native reader accepts is run both ways over
generated values (missing and null members, mixed types, big integers, Chinese text, lists and
maps): the outcome, a value or an error with its type and message, is the same.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from typing import Any

import cel
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xieshang.context import jsonable
from xieshang.date_functions import date_functions
from xieshang.expressions import Compiled, activation, new_context
from xieshang.native import compile_native
from xieshang.workflows import bundled

FUNCTIONS = date_functions("cn_official")


def _compiled(value: Any, seen: set[int], out: dict[str, Compiled]) -> None:
    if isinstance(value, Compiled):
        out.setdefault(value.source, value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        if id(value) in seen:
            return
        seen.add(id(value))
        for f in dataclasses.fields(value):
            _compiled(getattr(value, f.name), seen, out)
    elif isinstance(value, tuple | list):
        for v in value:
            _compiled(v, seen, out)
    elif isinstance(value, dict):
        for v in value.values():
            _compiled(v, seen, out)


def bundled_expressions() -> list[Compiled]:
    out: dict[str, Compiled] = {}
    for wf in bundled():
        seen: set[int] = set()
        for ts in wf.by_trigger.values():
            _compiled(list(ts), seen, out)
        _compiled(wf.deadline_at, seen, out)
        _compiled(wf.start_guard, seen, out)
    return [c for _, c in sorted(out.items())]


EXPRESSIONS = bundled_expressions()
NATIVE = [c for c in EXPRESSIONS if c.native is not None]

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet="ab中文 -0129", max_size=4),
    st.sampled_from(["2024-03-01", "joint", "individual", "sole", "split", "A"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner),
    max_leaves=6,
)
MOMENTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


def outcome(expr: Compiled, ctx: Any) -> tuple[Any, ...]:
    """The value, or the error's type and message (CEL spells a map's keys in no fixed order,
    so a message that shows a map is compared by its type alone)."""
    try:
        return ("value", jsonable(expr.run(ctx)))
    except Exception as e:
        return ("error", type(e).__name__, "" if "{" in str(e) else str(e))


@st.composite
def variables_for(draw: st.DrawFn, expr: Compiled) -> dict[str, Any]:
    """Values for what ``expr`` reads; a member is sometimes left out (CEL: no such key)."""
    literals = re.findall(r"'([^'\\]*)'", expr.source)
    value = VALUES | st.sampled_from(literals) if literals else VALUES
    out: dict[str, Any] = {}
    for name, members in expr.needs.items():
        if name == "now":
            out[name] = draw(MOMENTS)
        elif members is None:
            out[name] = draw(value)
        else:
            out[name] = {m: draw(value) for m in sorted(members) if draw(st.integers(0, 9)) > 0}
    return out


def test_most_bundled_expressions_run_natively() -> None:
    """The subset covers the common shapes: at least four in five bundled expressions."""
    assert len(NATIVE) >= 0.8 * len(EXPRESSIONS), (len(NATIVE), len(EXPRESSIONS))


@pytest.mark.parametrize("expr", NATIVE, ids=lambda c: c.source[:60])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_native_expression_gives_what_cel_gives(expr: Compiled, data: st.DataObject) -> None:
    """Where the native function answers, the expression's outcome is CEL's. (Where it does
    not, CEL itself runs; some of CEL's answers, such as a list plus a map, come in no fixed
    order, so comparing CEL with itself would prove nothing.)"""
    variables = data.draw(variables_for(expr))
    assert expr.native is not None
    try:
        expr.native(activation(dict(variables), dict(FUNCTIONS)))
    except Exception:
        return
    cel_outcome = outcome(expr, new_context(dict(variables), dict(FUNCTIONS)))
    assert outcome(expr, activation(dict(variables), dict(FUNCTIONS))) == cel_outcome


@settings(max_examples=300, deadline=None)
@given(
    a=VALUES,
    b=VALUES,
    op=st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "&&", "||", "+", "in"]),
)
def test_operators_over_any_values_give_what_cel_gives(a: Any, b: Any, op: str) -> None:
    """Each operator over any two values: where the native function answers, CEL's value."""
    source = f"x.a {op} x.b"
    native = compile_native(source)
    assert native is not None
    program = cel.compile(source)
    expr = Compiled(source, program, {"x": frozenset({"a", "b"})}, native=native)
    variables = {"x": {"a": a, "b": b}}
    try:
        native(activation(variables))
    except Exception:
        return
    assert outcome(expr, activation(variables)) == outcome(expr, new_context(variables))


CHOICES = [
    "x.a == null",
    "x.a != null",
    "null == x.a",
    "null != x.a",
    "null == null",
    "null != null",
    "(null) != x.a",
    "null + x.a == x.b",
    "x.a ? x.b : x.c",
    "!x.a ? x.b : x.c",
    "x.a == x.b ? x.b : x.c",
    "x.a != null ? x.a : x.b",
    "x.a && x.b ? 1 : 2",
    "x.a || x.b ? 'y' : 'n'",
    "(x.a) ? x.b : x.c",
]


@settings(max_examples=400, deadline=None)
@given(source=st.sampled_from(CHOICES), a=VALUES, b=VALUES, c=VALUES)
def test_null_checks_and_choices_over_any_values_give_what_cel_gives(
    source: str, a: Any, b: Any, c: Any
) -> None:
    """A comparison with the literal null, and a choice on any condition (a comparison, a
    logical operator, or a value that may not be a bool): where the native function answers,
    CEL's value."""
    native = compile_native(source)
    assert native is not None
    expr = Compiled(source, cel.compile(source), {"x": frozenset("abc")}, native=native)
    variables = {"x": {"a": a, "b": b, "c": c}}
    try:
        native(activation(variables))
    except Exception:
        return
    assert outcome(expr, activation(variables)) == outcome(expr, new_context(variables))


@pytest.mark.parametrize(
    "source",
    [
        "data.items.filter(i, i > 1)",
        "data.name.size()",
        "has(data.x)",
        "1.5 + data.x",
        "data.a - 1",
        "'a\\'b'",
        "0x10",
        "data.a < data.b < data.c",
        "r'raw'",
    ],
)
def test_what_the_native_reader_leaves_to_cel(source: str) -> None:
    """Macros, methods, ``has``, doubles, subtraction, escapes and chained relations: CEL."""
    assert compile_native(source) is None


@given(VALUES, st.randoms(use_true_random=False))
def test_what_an_expression_gives_is_stored_in_one_order(value: Any, rng: Any) -> None:
    """A map's entries come out of an evaluator in no fixed order (CEL's depends on the run):
    what is stored is the same text whatever the order they came in."""
    import json

    def shuffled(v: Any) -> Any:
        if isinstance(v, dict):
            items = list(v.items())
            rng.shuffle(items)
            return {k: shuffled(x) for k, x in items}
        if isinstance(v, list):
            return [shuffled(x) for x in v]
        return v

    assert json.dumps(jsonable(shuffled(value))) == json.dumps(jsonable(value))
    assert json.dumps(jsonable(value)) == json.dumps(jsonable(value), sort_keys=True)
