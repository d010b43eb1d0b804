"""CEL guards and effects: checked when the definition loads, with the domain's date functions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cel
import pytest
from hypothesis import given
from hypothesis import strategies as st

from xieshang import CalendarError, DefinitionError, load_definition
from xieshang.date_functions import date_functions
from xieshang.errors import FunctionFailed
from xieshang.expressions import (
    ExpressionError,
    compile_expression,
    merge_needs,
    references,
)

MINIMAL = (Path(__file__).parent / "fixtures" / "valid" / "minimal.yaml").read_text("utf-8")
NAMES = ["data", "payload", "actor", "instance", "params", "now"]
MEMBERS: dict[str, Any] = {
    "data": {"title", "units", "reply_due"},
    "payload": {"reply_class"},
    "actor": {"id", "roles", "unit"},
    "instance": {"id", "state"},
    "params": {"reply_window"},
}


def compiled(source: str) -> Any:
    return compile_expression(source, names=NAMES, members=MEMBERS)


def refused(source: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        compiled(source)
    return info.value


def with_guard(guard: str) -> str:
    """The minimal workflow with ``guard`` on its `reply` transition (transitions[1])."""
    return MINIMAL.replace(
        "    set: {reply_class: payload.reply_class}",
        f"    set: {{reply_class: payload.reply_class}}\n    guard: {guard!r}",
    )


def run(source: str, calendar: str = "cn_official", **variables: Any) -> Any:
    return compiled(source).run(cel.Context(variables, date_functions(calendar)))


# -- found at load ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("guard", "code", "says"),
    [
        ("user.id == 'a'", "XS121", "unknown name 'user'"),
        ("item == 'a'", "XS121", "unknown name 'item'"),
        ("add_workday(now, 5) != ''", "XS122", "unknown function 'add_workday'"),
        ("data.titel != ''", "XS123", "data.titel is not declared"),
        ("payload.reply_clas == 'A'", "XS123", "payload.reply_clas is not declared"),
        ("params.reply_windw != ''", "XS123", "params.reply_windw is not declared"),
        ("actor.name == 'a'", "XS123", "actor.name is not declared"),
        ("instance.colour == 'a'", "XS123", "instance.colour is not declared"),
        ("data.title ==", "XS120", "Syntax error"),
    ],
)
def test_a_bad_guard_is_refused_when_the_definition_loads(guard: str, code: str, says: str) -> None:
    """Unknown names, functions and members, and bad syntax, are load-time problems at the guard."""
    with pytest.raises(DefinitionError) as info:
        load_definition(with_guard(guard), "g.yaml")
    (problem,) = info.value.problems
    assert (problem.code, problem.path) == (code, "transitions[1].guard")
    assert says in problem.message
    assert (
        problem.line
        == MINIMAL.splitlines().index("    set: {reply_class: payload.reply_class}") + 2
    )


def test_an_unknown_name_lists_the_names_allowed_there() -> None:
    """The message of XS121 names what the expression may read instead."""
    error = refused("user.id == 'a'")
    assert error.code == "XS121"
    assert error.message.endswith("names allowed here: actor, data, instance, now, params, payload")


def test_an_unknown_member_lists_the_declared_ones() -> None:
    """The message of XS123 lists the declared fields of that variable."""
    assert refused("data.titel != ''").message.endswith("data has: reply_due, title, units")


def test_a_guard_reading_declared_names_loads() -> None:
    """A guard over declared data, payload, params, actor and instance members loads."""
    guard = (
        "actor.id != '' && 'clerk' in actor.roles && instance.state == 'handling'"
        " && payload.reply_class != 'C' && data.title != '' && params.reply_window != ''"
    )
    wf = load_definition(with_guard(guard))
    assert wf.transitions[1].guard is not None
    assert wf.transitions[1].guard.source == guard


@pytest.mark.parametrize(
    "source",
    [
        "data.units.all(u, u != '')",
        "data.units.exists(unit, unit.startsWith('A'))",
        "data.units.exists_one(x, x == 'A')",
        "data.units.map(u, u + '!').size() > 0",
        "data.units.filter(u, u != 'B').all(v, v != '')",
        "actor.roles.exists(r, r == 'clerk')",
    ],
)
def test_macro_variables_are_allowed_inside_their_macro(source: str) -> None:
    """all/exists/exists_one/map/filter bind a variable that is not an unknown name."""
    assert compiled(source).source == source


@pytest.mark.xfail(strict=True, reason="expressions: a macro's variable is allowed everywhere")
def test_a_macro_variable_used_outside_its_macro_is_an_unknown_name() -> None:
    """`u` is bound only inside `all(u, ...)`; reading it after the macro fails at load."""
    assert refused("data.units.all(u, u != '') && u == 'x'").code == "XS121"


@pytest.mark.parametrize(
    "source",
    [
        "data.title == 'payload.nothing'",
        'data.title == "actor.nothing"',
        "data.title == '''params.nothing'''",
        "data.title == 'it\\'s data.nothing'",
        "data.title.contains('instance.nothing.here')",
    ],
)
def test_string_literals_are_not_member_references(source: str) -> None:
    """A dotted name inside a string literal is text: it is neither checked nor needed."""
    assert compiled(source).needs == {"data": frozenset({"title"})}


@given(st.from_regex(r"[a-z]{1,8}\.[a-z]{1,8}", fullmatch=True))
def test_references_never_come_from_inside_a_string(dotted: str) -> None:
    """Whatever dotted text a literal holds, only the code outside it is a reference."""
    assert references(f"data.title == '{dotted}' && '{dotted}' != \"{dotted}\"") == [
        ("data", "title")
    ]


def test_a_commented_out_member_is_not_checked() -> None:
    """CEL has // comments; a member named only in a comment is not a reference."""
    assert compiled("data.title != '' // was data.titel\n").needs == {"data": frozenset({"title"})}


# -- what an expression needs ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "needs"),
    [
        ("data.title + data.reply_due", {"data": {"title", "reply_due"}}),
        ("payload.reply_class == 'A'", {"payload": {"reply_class"}}),
        ("size(data) > 0 && data.title != ''", {"data": None}),
        ("data['title'] != ''", {"data": None}),
        ("data.units.all(u, u != '') && actor.id != ''", {"data": {"units"}, "actor": {"id"}}),
        ("date(now) > data.reply_due", {"now": None, "data": {"reply_due"}}),
        ("due_date(now, params.reply_window)", {"now": None, "params": {"reply_window"}}),
        ("true", {}),
    ],
)
def test_needs_lists_exactly_the_variables_and_members_read(
    source: str, needs: dict[str, set[str] | None]
) -> None:
    """`needs` maps each variable read to its members, or None when it is used whole."""
    expected = {k: None if v is None else frozenset(v) for k, v in needs.items()}
    assert compiled(source).needs == expected


def test_merged_needs_are_the_union_and_a_whole_use_wins() -> None:
    """Merging keeps every member read; one whole use of a variable makes it whole."""
    a, b, c = compiled("data.title != ''"), compiled("data.units != []"), compiled("size(data) > 0")
    assert merge_needs(a, b, None) == {"data": frozenset({"title", "units"})}
    assert merge_needs(a, c, b) == {"data": None}


def test_a_compiled_transition_needs_what_its_guard_and_effects_read() -> None:
    """The transition's needs are the union over its guard and every `set` expression."""
    wf = load_definition(with_guard("actor.unit != null && data.title != ''"))
    assert wf.transitions[1].needs == {
        "actor": frozenset({"unit"}),
        "data": frozenset({"title"}),
        "payload": frozenset({"reply_class"}),
    }


# -- the domain's date functions -------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "answer"),
    [
        # 9-29 is a make-up working day, 10-1..7 the National Day holiday.
        ("add_workdays('2024-09-27', 5)", "2024-10-10"),
        ("add_months('2023-11-30', 3)", "2024-02-29"),
        ("add_months('2024-01-31', 1)", "2024-02-29"),
        ("workdays_between('2024-09-27', '2024-10-10')", 5),
        ("due_date('2024-09-27', '5 working days')", "2024-10-10"),
        ("due_date('2023-11-30', '3 months')", "2024-02-29"),
        ("due_date('2024-09-27', '2 weeks')", "2024-10-11"),
        ("days_between('2024-02-28', '2024-03-01')", 2),
    ],
)
def test_date_functions_give_the_domains_answers(source: str, answer: Any) -> None:
    """Working days follow the official calendar; months keep the day, clamped to the month end."""
    assert run(source) == answer


def test_date_of_a_timestamp_is_the_day_in_china() -> None:
    """`date(now)` is the calendar day in China time (UTC+8), as an ISO string."""
    assert run("date(now)", now=datetime(2024, 9, 27, 20, 0, tzinfo=UTC)) == "2024-09-28"
    assert run("date(now)", now=datetime(2024, 9, 27, 15, 59, tzinfo=UTC)) == "2024-09-27"


def test_the_weekdays_calendar_ignores_official_holidays() -> None:
    """With `calendar: weekdays`, only Saturdays and Sundays rest."""
    assert run("add_workdays('2024-09-27', 5)", calendar="weekdays") == "2024-10-04"


def test_a_due_date_in_hours_is_refused_with_a_calendar_error() -> None:
    """`due_date` works in days; an hour-based duration is a CalendarError naming it."""
    with pytest.raises(CalendarError, match="3 hours"):
        run("due_date('2024-09-27', '3 hours')")


def test_a_failing_function_is_named_with_its_arguments_and_prints_nothing(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A domain function that fails inside an expression raises FunctionFailed naming the
    function, its arguments and why; the CEL binding prints nothing to stderr."""
    with pytest.raises(FunctionFailed) as caught:
        run("date('2024-13-45') == '2024-01-01'")
    assert caught.value.function == "date"
    assert caught.value.arguments == ["2024-13-45"]
    assert "2024-13-45" in caught.value.message
    assert capfd.readouterr().err == ""


def test_a_transition_using_date_functions_is_marked_so() -> None:
    """Only transitions whose expressions call domain functions get them at run time."""
    wf = load_definition(with_guard("date(now) != ''"))
    assert [t.uses_functions for t in wf.transitions] == [False, True, False]
