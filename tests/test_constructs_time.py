"""Counting working days backwards: ``workdays_before`` and negative durations.

``workdays_before(d, '5 working days')`` is the date 5 working days before ``d``: the day ``d``
never counts, rest days are skipped and make-up working days count, exactly mirroring the
forward count (``workdays_between`` of the result and ``d`` is 5). ``due_date`` takes
``'-5 working days'`` the same way. A deadline counted backwards into a provisional year is
marked provisional, as a forward one is. A time limit (a timer, a deadline's ``after``, a
reminder, a duration param) cannot be negative.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
from constructs_support import BACKENDS, CN, make_engine, snapshot
from hypothesis import given
from hypothesis import strategies as st

from xieshang import Actor, DefinitionError, Engine, Registry, TransitionNotAllowed
from xieshang.calendar import Duration, add_workdays, parse_duration, parse_offset, shift
from xieshang.date_functions import date_functions
from xieshang.errors import CalendarError
from xieshang.schedules import CalendarChain

OFFICIAL = CalendarChain()
FUNCTIONS = date_functions(OFFICIAL)
OFFICE = Actor.of("o1", "office", org="city")

INSPECTION = """\
id: inspection
version: 1
title: {zh: 视察协商}
roles: {office: {zh: 政协办公室}}
data:
  inspection_date: {type: date, required: true}
  notice_by: {type: date}
states:
  preparing:
    initial: true
    label: {zh: 筹备中}
    deadline: {at: "workdays_before(data.inspection_date, '5 working days')"}
  noticed: {label: {zh: 已通知}}
  held: {final: true, label: {zh: 已举行}}
transitions:
  - trigger: send_notice
    from: preparing
    to: noticed
    roles: [office]
    payload: {lead: {type: string, required: true}}
    guard: date(now) <= due_date(data.inspection_date, '-' + payload.lead)
    guard_message: {zh: "通知须在视察前{payload.lead}发出"}
    set: {notice_by: "due_date(data.inspection_date, '-' + payload.lead)"}
  - trigger: hold
    from: noticed
    to: held
    roles: [office]
"""


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    yield from make_engine(request, tmp_path, {"inspection": INSPECTION})


# --- the calendar -----------------------------------------------------------------------


def test_five_working_days_before_national_day_2024_mirror_the_forward_count() -> None:
    """Back from Monday 2024-10-14: the make-up Saturday 10-12 counts, 1 to 7 October rest;
    and back from 10-10 is 09-27, the day 5 working days forward from which is 10-10."""
    assert FUNCTIONS["workdays_before"]("2024-10-14", "5 working days") == "2024-10-08"
    assert FUNCTIONS["workdays_before"]("2024-10-10", "5 working days") == "2024-09-27"
    assert FUNCTIONS["workdays_before"]("2024-10-10", "5个工作日") == "2024-09-27"
    assert FUNCTIONS["due_date"]("2024-10-10", "-5 working days") == "2024-09-27"
    assert FUNCTIONS["due_date"]("2024-09-27", "5 working days") == "2024-10-10"


@pytest.mark.parametrize(
    ("start", "offset", "expected"),
    [
        ("2024-05-31", "-3 months", "2024-02-29"),
        ("2024-03-15", "-2 weeks", "2024-03-01"),
        ("2024-03-01", "-1 day", "2024-02-29"),
        ("2024-03-01", "+10 days", "2024-03-11"),
        ("2024-02-19", "-0 working days", "2024-02-19"),
    ],
)
def test_due_date_takes_a_signed_duration(start: str, offset: str, expected: str) -> None:
    assert FUNCTIONS["due_date"](start, offset) == expected


def test_parse_offset_reads_the_sign_and_the_magnitude() -> None:
    assert parse_offset("-5 working days") == (-1, Duration(5, "working_days"))
    assert parse_offset("+3个月") == (1, Duration(3, "months"))
    assert parse_offset("10 days") == (1, Duration(10, "days"))


def test_a_time_limit_cannot_be_negative_and_says_where_one_may() -> None:
    with pytest.raises(CalendarError) as caught:
        parse_duration("-5 working days")
    assert caught.value.message == (
        "a time limit cannot be negative ('-5 working days'); a negative duration is allowed "
        "only where a date is computed from one (due_date, workdays_before)"
    )


def test_shift_refuses_hours_naming_the_units_a_date_moves_by() -> None:
    with pytest.raises(CalendarError, match="a date moves by days, weeks, months or working"):
        shift(OFFICIAL, date(2024, 3, 1), Duration(3, "hours"), -1)


covered = st.dates(min_value=date(2005, 2, 1), max_value=date(2026, 11, 30))


@given(covered, st.integers(min_value=0, max_value=40))
def test_workdays_before_is_the_inverse_of_the_forward_count(day: date, n: int) -> None:
    """The back count is ``add_workdays`` with -n, and counting the walk from ``day`` to it
    gives -n; from a working day, n working days forward from it return to ``day``."""
    back = FUNCTIONS["workdays_before"](day.isoformat(), f"{n} working days")
    assert back == add_workdays(OFFICIAL, day, -n).isoformat()
    assert FUNCTIONS["workdays_between"](day.isoformat(), back) == -n
    if OFFICIAL.is_workday(day):
        assert FUNCTIONS["add_workdays"](back, n) == day.isoformat()


@pytest.mark.parametrize("duration", ["3 days", "-5 working days", "2 hours", "soon"])
def test_workdays_before_takes_only_positive_working_days(duration: str) -> None:
    """Anything else fails the function (null in CEL, a FunctionFailed for the caller)."""
    assert FUNCTIONS["workdays_before"]("2024-10-10", duration) is None


# --- in a workflow ----------------------------------------------------------------------


def test_a_deadline_counted_back_into_a_provisional_year_is_marked_provisional(
    engine: Engine,
) -> None:
    """5 working days before 2027-01-15 walks only 2027, which no official table has yet."""
    created = engine.start("inspection", {"inspection_date": "2027-01-15"}, OFFICE)
    assert created.due_at == datetime(2027, 1, 9, tzinfo=CN)
    assert created.to_dict()["due_provisional"] == [2027]
    row = engine.history(created.id)[0]
    assert row.deadline is not None and row.deadline["provisional"] == [2027]
    assert row.deadline["basis"].startswith("2027:provisional:")


def test_a_deadline_counted_back_across_new_year_records_both_years(engine: Engine) -> None:
    """Back from 2027-01-08 over the provisional New Year's Day lands on 2026-12-31: the basis
    names the official 2026 and the provisional 2027, which alone is provisional."""
    created = engine.start("inspection", {"inspection_date": "2027-01-08"}, OFFICE)
    assert created.due_at == datetime(2027, 1, 1, tzinfo=CN)
    assert created.to_dict()["due_provisional"] == [2027]
    basis = created.due_basis or ""
    assert [tag.split(":")[:2] for tag in basis.split(";")] == [
        ["2026", "official"],
        ["2027", "provisional"],
    ]


def test_a_deadline_counted_back_in_an_official_year_is_not_provisional(engine: Engine) -> None:
    created = engine.start("inspection", {"inspection_date": "2024-10-14"}, OFFICE)
    assert created.due_at == datetime(2024, 10, 9, tzinfo=CN)
    assert created.to_dict()["due_provisional"] == []


def test_a_negative_duration_in_a_guard_and_an_effect(engine: Engine) -> None:
    """The notice is due 5 working days before the inspection: sent on 2024-03-04 for an
    inspection on 03-08 it is refused; for one on 03-11 it is recorded as due by 03-04."""
    late = engine.start("inspection", {"inspection_date": "2024-03-08"}, OFFICE)
    before = snapshot(engine)
    with pytest.raises(TransitionNotAllowed) as caught:
        engine.fire(late.id, "send_notice", OFFICE, {"lead": "5 working days"})
    assert caught.value.message.startswith(
        "'send_notice' refused in state 'preparing': 通知须在视察前5个工作日发出"
    )
    assert snapshot(engine) == before
    ok = engine.start("inspection", {"inspection_date": "2024-03-11"}, OFFICE)
    sent = engine.fire(ok.id, "send_notice", OFFICE, {"lead": "5 working days"})
    assert (sent.state, sent.data["notice_by"]) == ("noticed", "2024-03-04")
    assert engine.verify() == []


def test_a_bad_duration_in_a_guard_names_the_function_and_changes_nothing(engine: Engine) -> None:
    created = engine.start("inspection", {"inspection_date": "2024-03-11"}, OFFICE)
    before = snapshot(engine)
    with pytest.raises(TransitionNotAllowed) as caught:
        engine.fire(created.id, "send_notice", OFFICE, {"lead": "5 fortnights"})
    failed = caught.value.details["function_failed"]
    assert failed["function"] == "due_date"
    assert failed["arguments"] == ["2024-03-11", "-5 fortnights"]
    assert snapshot(engine) == before


def _with(where: str) -> str:
    if where == "param":
        return INSPECTION.replace(
            "data:\n", "params: {lead: {type: duration, default: '-3 days'}}\ndata:\n", 1
        )
    if where == "reminder":
        return INSPECTION.replace("deadline: {at: ", "deadline: {remind_before: -1 days, at: ")
    held = "to: held\n    roles: [office]\n"
    return INSPECTION.replace(held, "to: held\n    roles: [office, system]\n") + (
        "timers:\n  - {in: noticed, after: -2 days, fire: hold}\n"
    )


@pytest.mark.parametrize(
    ("where", "path"),
    [
        ("timer", "timers[0].after"),
        ("reminder", "states.preparing.deadline.remind_before"),
        ("param", "params.lead.default"),
    ],
)
def test_a_negative_time_limit_is_refused_when_the_workflow_loads(where: str, path: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        Registry.from_texts([("inspection.yaml", _with(where))])
    problems = caught.value.problems
    assert [(p.code, p.path) for p in problems] == [
        ("XS116" if where == "param" else "XS115", path)
    ]
    assert "cannot be negative ('-" in problems[0].message
