"""The calendar never runs out: a deployment's file, the official table, then provisional years.

Deadlines counted on a provisional year say so; `reconcile_calendar` moves them once the office
enters the year's notice, one audited row per instance, and verify and replay hold across it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xieshang import Actor, Engine, FixedClock, Registry, load_definition
from xieshang.adapters.memory import MemoryStore
from xieshang.adapters.sql import open_store
from xieshang.calendar import CHINA_TZ, add_workdays
from xieshang.errors import CalendarFileError
from xieshang.ports import Store
from xieshang.schedules import CalendarChain, parse_calendar_file

CN = CHINA_TZ
WINDOW = """
id: window
version: 1
title: {zh: 五日窗口}
roles: {clerk: {zh: 办事员}}
data:
  title: {type: string, required: true}
states:
  open:
    initial: true
    label: {zh: 受理中}
    deadline: {after: 5 working days, remind_before: 2 working days}
  closed: {final: true, label: {zh: 已办结}}
transitions:
  - trigger: close
    from: open
    to: closed
    roles: [clerk, system]
timers:
  - in: open
    after: 7 working days
    fire: close
"""
FILE_2027 = """
2027:
  source: 国务院办公厅关于2027年部分节假日安排的通知
  holidays: [2027-01-01, 2027-01-04]
  workdays: []
"""
CLERK = Actor.of("c1", "clerk", org="city")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- the chain ------------------------------------------------------------------------------


def test_a_year_past_the_official_table_is_provisional_statutory_holidays() -> None:
    """2027 has no official table: New Year and the Spring Festival rest, weekends rest, no
    make-up working days, and the year says it is provisional."""
    chain = CalendarChain()
    assert chain.is_provisional(2027) and not chain.is_provisional(2026)
    assert not chain.is_workday(date(2027, 1, 1))  # a Friday
    assert not chain.is_workday(date(2027, 2, 8))  # Spring Festival, a Monday
    assert chain.is_workday(date(2027, 1, 4))
    assert not chain.is_workday(date(2027, 2, 14))  # a Sunday: no make-up day is guessed
    assert "holidays" in chain.schedule(2027).source


def test_the_calendar_never_runs_out() -> None:
    """Counting working days far past the official table answers instead of raising."""
    chain = CalendarChain()
    assert add_workdays(chain, date(2026, 12, 28), 5) == date(2027, 1, 5)
    assert add_workdays(chain, date(2030, 6, 1), 250).year == 2031


def test_the_file_wins_over_the_package_for_the_years_it_holds() -> None:
    """A file's 2026 entry replaces the official table for 2026, whole, and for 2026 only."""
    text = "2026:\n  source: 更正通知\n  holidays: [2026-03-02]\n  workdays: [2026-02-14]\n"
    chain = CalendarChain(parse_calendar_file(text))
    assert not chain.is_workday(date(2026, 3, 2))
    assert chain.schedule(2026).kind == "file" and chain.schedule(2026).source == "更正通知"
    assert chain.schedule(2025).kind == "official"
    assert chain.is_workday(date(2026, 10, 1))  # the file's year is all of 2026: no merging


def test_a_file_year_gives_its_rest_and_make_up_days() -> None:
    """Ranges are inclusive; a listed weekend day works; the year is no longer provisional."""
    text = "2027:\n  source: s\n  holidays: [2027-02-05..2027-02-11]\n  workdays: [2027-02-14]\n"
    chain = CalendarChain(parse_calendar_file(text))
    assert [chain.is_workday(date(2027, 2, d)) for d in range(4, 13)] == [
        True,
        *[False] * 7,
        True,
    ]
    assert chain.is_workday(date(2027, 2, 14))
    assert not chain.is_provisional(2027)


# --- the file's problems ----------------------------------------------------------------------

BAD = [
    ("abc:\n  source: s\n", "XS301", 1),
    ("2027:\n  source: s\n  holidays: [2027-13-01]\n", "XS302", 3),
    ("2027:\n  source: s\n  holidays: [2027-02-30]\n", "XS302", 3),
    ("2027:\n  source: s\n  holidays: ['2027-02-11..2027-02-05']\n", "XS303", 3),
    ("2027:\n  source: s\n  holidays:\n    - 2027-01-01\n    - 2027-01-01\n", "XS304", 5),
    (
        "2027:\n  source: s\n  holidays: [2027-02-13]\n  workdays: [2027-02-13]\n",
        "XS305",
        4,
    ),
    ("2027:\n  source: s\n  holidays: [2028-01-01]\n", "XS306", 3),
    ("2027:\n  source: s\n  holiday: [2027-01-01]\n", "XS307", 3),
    ("2027:\n  source: s\n  holidays: 2027-01-01\n", "XS308", 3),
    ("2027:\n  holidays: [2027-01-01]\n", "XS309", 1),
    ("2027:\n  source: s\n  workdays: [2027-02-15]\n", "XS310", 3),
    ("2027: [1, 2]\n", "XS308", 1),
    ("2027:\n  source: s\n  holidays: [2027-01-01\n", "XS001", None),
]


@pytest.mark.parametrize(("text", "code", "line"), BAD)
def test_each_mistake_in_a_calendar_file_is_named_with_its_line_and_code(
    text: str, code: str, line: int | None
) -> None:
    """Every malformed-file case is refused with a stable code and the line it is on."""
    with pytest.raises(CalendarFileError) as caught:
        parse_calendar_file(text, "cal.yaml")
    problems = caught.value.problems
    assert [p.code for p in problems] == [code]
    if line is not None:
        assert problems[0].line == line
    assert "cal.yaml" in str(caught.value)


def test_every_problem_of_a_file_is_listed_at_once() -> None:
    """A file with four mistakes reports all four, in line order."""
    text = (
        "2027:\n"
        "  source: s\n"
        "  holidays: [2027-13-01, 2027-01-01, 2027-01-01]\n"
        "  workdays: [2027-02-15]\n"
        "soon: {}\n"
    )
    with pytest.raises(CalendarFileError) as caught:
        parse_calendar_file(text)
    assert [(p.code, p.line) for p in caught.value.problems] == [
        ("XS302", 3),
        ("XS304", 3),
        ("XS310", 4),
        ("XS301", 5),
    ]


years = st.integers(2027, 2035)


@st.composite
def schedules(draw: st.DrawFn) -> dict[int, tuple[list[date], list[date]]]:
    out: dict[int, tuple[list[date], list[date]]] = {}
    for year in draw(st.sets(years, min_size=1, max_size=3)):
        days = st.dates(date(year, 1, 1), date(year, 12, 31))
        rest = draw(st.sets(days, max_size=8))
        weekend = [d for d in draw(st.sets(days, max_size=8)) if d.weekday() >= 5 and d not in rest]
        out[year] = (sorted(rest), sorted(weekend))
    return out


def _text(entries: dict[int, tuple[list[date], list[date]]]) -> str:
    lines = []
    for year, (rest, work) in entries.items():
        lines.append(f"{year}:\n  source: 通知{year}")
        lines.append(f"  holidays: [{', '.join(d.isoformat() for d in rest)}]")
        lines.append(f"  workdays: [{', '.join(d.isoformat() for d in work)}]")
    return "\n".join(lines) + "\n"


@given(schedules())
def test_a_valid_file_reads_back_the_days_it_lists(
    entries: dict[int, tuple[list[date], list[date]]],
) -> None:
    """Whatever valid file is written, each listed holiday rests and each listed make-up day
    works, and the years are the file's."""
    chain = CalendarChain(parse_calendar_file(_text(entries)))
    for year, (rest, work) in entries.items():
        assert chain.schedule(year).kind == "file"
        assert all(not chain.is_workday(d) for d in rest)
        assert all(chain.is_workday(d) for d in work)


@given(schedules(), st.data())
def test_a_date_listed_as_both_is_refused_and_nothing_is_read(
    entries: dict[int, tuple[list[date], list[date]]], data: st.DataObject
) -> None:
    """Adding one day to both lists of a valid file makes it refused with XS305 named."""
    year = data.draw(st.sampled_from(sorted(entries)))
    rest, work = entries[year]
    saturday = date(year, 1, 1) + timedelta(days=(5 - date(year, 1, 1).weekday()) % 7)
    both = data.draw(st.sampled_from([saturday, saturday + timedelta(days=1)]))
    entries[year] = (sorted({*rest, both}), sorted({*work, both}))
    with pytest.raises(CalendarFileError) as caught:
        parse_calendar_file(_text(entries))
    assert "XS305" in [p.code for p in caught.value.problems]


# --- deadlines that say which calendar they used -------------------------------------------


@pytest.fixture
def window() -> Registry:
    return Registry([load_definition(WINDOW, "window.yaml")])


def _sqlite(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path / 'cal.db'}")


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "sqlite":
        found = _sqlite(tmp_path)
    else:
        found = open_store(request.getfixturevalue("pg_database"))
    yield found
    found.close()  # type: ignore[attr-defined]


def test_a_window_opened_before_new_year_is_provisional_and_reconciled(
    store: Store, window: Registry
) -> None:
    """Monday 2026-12-28 + 5 working days closes after 2027-01-05, marked provisional; with the
    2027 notice loaded, reconcile moves it (and its timers) with one audited row, verify and
    replay pass, and a second reconcile does nothing."""
    clock = FixedClock(at("2026-12-28T09:00:00+08:00"))
    engine = Engine(store, window, clock)
    inst = engine.start("window", {"title": "跨年窗口"}, CLERK)
    assert inst.due_at == at("2027-01-06T00:00:00+08:00")
    assert inst.to_dict()["due_provisional"] == [2027]
    first = engine.history(inst.id)[0]
    assert first.deadline is not None and first.deadline["provisional"] == [2027]
    timers = {t.kind: t for t in store.timers_of(inst.id)}
    assert timers["timer"].due_at == at("2027-01-08T00:00:00+08:00")
    assert timers["reminder"].due_at == at("2026-12-31T00:00:00+08:00")  # 2 working days before
    assert all("provisional" in (t.basis or "") for t in timers.values())

    nothing = engine.reconcile_calendar()
    assert nothing.changes == []

    clock.set(at("2026-12-30T10:00:00+08:00"))
    updated = Engine(store, window, clock, calendar=CalendarChain(parse_calendar_file(FILE_2027)))
    dry = updated.reconcile_calendar(dry_run=True)
    assert [c["due_after"] for c in dry.changes] == ["2027-01-06"]
    assert updated.get(inst.id).version == 1
    report = updated.reconcile_calendar()
    assert len(report.changes) == 1
    change = report.changes[0]
    assert (change["due_before"], change["due_after"]) == ("2027-01-05", "2027-01-06")
    assert change["provisional_after"] == []
    moved = updated.get(inst.id)
    assert moved.version == 2 and moved.due_at == at("2027-01-07T00:00:00+08:00")
    assert moved.to_dict()["due_provisional"] == []
    row = updated.history(inst.id)[-1]
    assert (row.trigger, row.actor["id"], row.source, row.target) == (
        "calendar_reconcile",
        "system",
        "open",
        "open",
    )
    assert row.reason is not None
    assert "2027-01-05" in row.reason and "2027-01-06" in row.reason
    assert "国务院办公厅关于2027年部分节假日安排的通知" in row.reason
    timers = {t.kind: t for t in store.timers_of(inst.id)}
    assert timers["timer"].due_at == at("2027-01-09T00:00:00+08:00")
    assert timers["deadline"].due_at == moved.due_at
    assert {t.version for t in timers.values()} == {2}
    types = [e.type for e in store.outbox(inst.id)]
    assert types[-1] == "xieshang.instance.deadline_changed"
    assert updated.verify() == []
    replayed = updated.replay(inst.id)
    assert (replayed.due_at, replayed.due_basis) == (moved.due_at, moved.due_basis)
    assert updated.reconcile_calendar().changes == []


def test_what_already_fired_is_not_undone(store: Store, window: Registry) -> None:
    """An instance marked overdue on the provisional date keeps its mark and its date; only
    the timer still pending moves."""
    clock = FixedClock(at("2026-12-28T09:00:00+08:00"))
    engine = Engine(store, window, clock)
    inst = engine.start("window", {"title": "已逾期"}, CLERK)
    engine.tick(at("2027-01-06T00:00:01+08:00"))
    assert engine.get(inst.id).overdue
    updated = Engine(store, window, clock, calendar=CalendarChain(parse_calendar_file(FILE_2027)))
    report = updated.reconcile_calendar(at("2027-01-06T08:00:00+08:00"))
    assert len(report.changes) == 1
    after = updated.get(inst.id)
    assert after.overdue and after.due_at == at("2027-01-06T00:00:00+08:00")
    assert [t.kind for t in store.timers_of(inst.id)] == ["timer"]
    assert store.timers_of(inst.id)[0].due_at == at("2027-01-09T00:00:00+08:00")
    assert updated.verify() == []


def test_a_deadline_counted_on_official_data_is_never_moved(window: Registry) -> None:
    """A window inside 2026 has an official basis; a 2027 file changes nothing of it."""
    store = MemoryStore()
    clock = FixedClock(at("2026-11-02T09:00:00+08:00"))
    engine = Engine(store, window, clock)
    inst = engine.start("window", {"title": "年内"}, CLERK)
    assert inst.to_dict()["due_provisional"] == []
    updated = Engine(store, window, clock, calendar=CalendarChain(parse_calendar_file(FILE_2027)))
    assert updated.reconcile_calendar().changes == []


@settings(max_examples=30, deadline=None)
@given(start=st.dates(date(2026, 11, 1), date(2027, 12, 20)), hour=st.integers(0, 23))
def test_reconcile_then_verify_holds_for_any_start(start: date, hour: int) -> None:
    """Whatever day a window opens, after a reconcile the deadline is the file's count, the
    chain verifies and the replay gives the stored deadline."""
    registry = Registry([load_definition(WINDOW, "window.yaml")])
    store = MemoryStore()
    moment = datetime(start.year, start.month, start.day, hour, tzinfo=CN)
    clock = FixedClock(moment)
    inst = Engine(store, registry, clock).start("window", {"title": "t"}, CLERK)
    chain = CalendarChain(parse_calendar_file(FILE_2027))
    updated = Engine(store, registry, clock, calendar=chain)
    updated.reconcile_calendar()
    stored = updated.get(inst.id)
    expected = add_workdays(chain, start, 5) + timedelta(days=1)
    assert stored.due_at == datetime(expected.year, expected.month, expected.day, tzinfo=CN)
    assert updated.verify() == []
    assert updated.replay(inst.id).due_at == stored.due_at


# --- the bundled return window across New Year ---------------------------------------------

MEMBER = Actor.of("m1", "member", org="city")
STAFF = Actor.of("s1", "proposal_committee", org="city")
OFFICE = Actor.of("o1", "supervision_office", org="city")
UNIT = Actor.of("u1", "handling_unit", org="city", unit="housing")


def test_a_return_window_across_new_year_runs_and_its_refusal_reads_clean(
    store: Store, capfd: pytest.CaptureFixture[str]
) -> None:
    """A unit assigned on Monday 2026-12-28 may ask to return until 2027-01-05 (New Year's
    Day rests); after that the refusal names the date, says 5个工作日 in Chinese and 5 working
    days in English, shows no raw template, and nothing is printed to stderr."""
    from xieshang import TransitionNotAllowed
    from xieshang.workflows import bundled

    clock = FixedClock(at("2026-12-28T09:00:00+08:00"))
    engine = Engine(store, bundled(), clock)
    pid = engine.start("proposal", {"title": "跨年交办", "first_proposer": "m1"}, MEMBER).id
    engine.fire(pid, "submit", MEMBER, {"category": "society"})
    engine.fire(pid, "start_review", STAFF)
    engine.fire(pid, "file", STAFF, {"number": "2026-301"})
    engine.fire(pid, "assign", OFFICE, {"mode": "sole", "units": ["housing"]})
    child = engine.children(pid)[0].id
    clock.set(at("2027-01-06T09:00:00+08:00"))
    with pytest.raises(TransitionNotAllowed) as err:
        engine.fire(child, "request_return", UNIT, {"suggested_unit": "u2"}, reason="非本单位职责")
    message = err.value.message
    assert "截止2027-01-05" in message and "5个工作日" in message and "5 working days" in message
    assert "{" not in message and "}" not in message
    clock.set(at("2027-01-05T17:00:00+08:00"))
    done = engine.fire(
        child, "request_return", UNIT, {"suggested_unit": "u2"}, reason="非本单位职责"
    )
    assert done.state == "return_requested"
    assert capfd.readouterr().err == ""
    assert engine.verify() == []


def test_an_approved_extension_moves_the_open_units_due_dates_with_it(store: Store) -> None:
    """Approving a proposal's extension sets each open handling unit's due date to the new
    one, with one ``parent_update`` row per unit, its overdue timer moved, and verify and
    replay holding; a unit that already finished is left as it was."""
    from xieshang.workflows import bundled

    clock = FixedClock(at("2024-09-27T09:00:00+08:00"))
    engine = Engine(store, bundled(), clock)
    pid = engine.start("proposal", {"title": "延期", "first_proposer": "m1"}, MEMBER).id
    engine.fire(pid, "submit", MEMBER, {"category": "society"})
    engine.fire(pid, "start_review", STAFF)
    engine.fire(pid, "file", STAFF, {"number": "2024-018"})
    engine.fire(pid, "assign", OFFICE, {"mode": "sole", "units": ["housing"]})
    child = engine.children(pid)[0]
    engine.fire(child.id, "acknowledge", UNIT, {"contact_person": "张科长"})
    child = engine.fire(child.id, "contact_proposer", UNIT, {"mode": "phone"})
    assert child.state == "handling" and child.data["due"] == "2024-12-27"
    assert child.due_at == at("2024-12-28T00:00:00+08:00")
    engine.fire(pid, "request_extension", UNIT, {"new_due": "2025-02-28"}, reason="需跨年度预算")
    engine.fire(pid, "approve_extension", OFFICE)
    moved = engine.get(child.id)
    assert moved.data["due"] == "2025-02-28"
    assert moved.due_at == at("2025-03-01T00:00:00+08:00")
    row = engine.history(child.id)[-1]
    assert (row.trigger, row.payload["set"], row.actor["id"]) == (
        "parent_update",
        {"due": "2025-02-28"},
        "o1",
    )
    deadline = [t for t in store.timers_of(child.id) if t.kind == "deadline"]
    assert [t.due_at for t in deadline] == [moved.due_at]
    assert (
        engine.tick(at("2024-12-28T09:00:00+08:00")).fired == 0 or not engine.get(child.id).overdue
    )
    assert not engine.get(child.id).overdue
    assert engine.verify() == []
    assert engine.replay(child.id).data == engine.get(child.id).data
