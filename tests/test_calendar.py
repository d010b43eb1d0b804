"""Working days, calendar months, durations and deadlines on the official Chinese calendar."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import chinese_calendar
import pytest
from hypothesis import given
from hypothesis import strategies as st

from xieshang.calendar import (
    CALENDAR_NAMES,
    CHINA_TZ,
    Duration,
    WeekdayCalendar,
    add_months,
    add_workdays,
    due_after,
    get_calendar,
    last_day,
    next_workday,
    parse_duration,
    workdays_between,
)
from xieshang.errors import CalendarError
from xieshang.schedules import CalendarChain

CN = CalendarChain()
WEEKDAYS = WeekdayCalendar()
DATA_YEARS = sorted({d.year for d in (*chinese_calendar.holidays, *chinese_calendar.workdays)})
FIRST_YEAR, LAST_YEAR = DATA_YEARS[0], DATA_YEARS[-1]
# 40 working days back from early March 2004 reach past 2004-01-01, so 60 days is too tight.
MARGIN = timedelta(days=90)
UNITS = ("working_days", "days", "weeks", "months", "hours", "minutes")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- the official calendar ---------------------------------------------------------------


def test_spring_festival_2024_holidays_are_rest_days() -> None:
    """The Spring Festival holidays 2024-02-10..17 are rest days, weekdays included."""
    for offset in range(8):
        assert not CN.is_workday(date(2024, 2, 10) + timedelta(days=offset))


def test_spring_festival_2024_make_up_sundays_are_working_days() -> None:
    """The make-up days 2024-02-04 and 2024-02-18 (both Sundays) are working days."""
    assert CN.is_workday(date(2024, 2, 4))
    assert CN.is_workday(date(2024, 2, 18))


def test_working_days_across_spring_festival_2024_skip_holidays_and_count_make_up_days() -> None:
    """From Friday 2024-02-02 the make-up Sunday is the 1st working day and 2024-02-18 the 7th."""
    assert add_workdays(CN, date(2024, 2, 2), 1) == date(2024, 2, 4)
    assert add_workdays(CN, date(2024, 2, 2), 6) == date(2024, 2, 9)
    assert add_workdays(CN, date(2024, 2, 2), 7) == date(2024, 2, 18)
    assert add_workdays(CN, date(2024, 2, 9), 1) == date(2024, 2, 18)
    assert workdays_between(CN, date(2024, 2, 9), date(2024, 2, 17)) == 0


def test_national_day_2024_window_of_5_working_days_ends_on_10_october() -> None:
    """5 working days from 2024-09-27 end 2024-10-10: the make-up 29 Sep counts, 1-7 Oct do not."""
    assert add_workdays(CN, date(2024, 9, 27), 5) == date(2024, 10, 10)
    assert workdays_between(CN, date(2024, 9, 27), date(2024, 10, 10)) == 5


def test_national_day_2024_deadline_is_midnight_after_10_october() -> None:
    """A 5-working-day limit opened 2024-09-27T09:00+08:00 expires at 2024-10-11T00:00+08:00."""
    start = at("2024-09-27T09:00+08:00")
    five = Duration(5, "working_days")
    assert due_after(CN, start, five) == at("2024-10-11T00:00+08:00")
    assert due_after(CN, start, five).tzinfo == CHINA_TZ
    assert last_day(CN, start, five) == date(2024, 10, 10)


# --- the weekday calendar and the registry -----------------------------------------------


def test_weekday_calendar_ignores_holidays_and_make_up_days() -> None:
    """The weekday calendar works on National Day and rests on the make-up Sunday."""
    assert WEEKDAYS.is_workday(date(2024, 10, 1))
    assert not WEEKDAYS.is_workday(date(2024, 9, 29))
    assert add_workdays(WEEKDAYS, date(2024, 9, 27), 5) == date(2024, 10, 4)


def test_weekday_calendar_answers_for_any_year() -> None:
    """The weekday calendar needs no data, so 2099 is fine."""
    assert WEEKDAYS.is_workday(date(2099, 1, 1))


def test_get_calendar_returns_each_named_calendar() -> None:
    """Every name in CALENDAR_NAMES gives a calendar of that name."""
    assert set(CALENDAR_NAMES) == {"cn_official", "weekdays"}
    for name in CALENDAR_NAMES:
        assert get_calendar(name).name == name


def test_unknown_calendar_is_refused_listing_the_known_names() -> None:
    """An unknown calendar name raises CalendarError listing the known names."""
    with pytest.raises(CalendarError, match="cn_official, weekdays"):
        get_calendar("gregorian")


# --- counting working days ---------------------------------------------------------------


def test_zero_working_days_returns_the_start_even_on_a_rest_day() -> None:
    """add_workdays with n == 0 returns start unchanged."""
    assert add_workdays(CN, date(2024, 10, 1), 0) == date(2024, 10, 1)


def test_start_day_never_counts() -> None:
    """One working day after a working Friday is the next Monday, not the Friday."""
    assert add_workdays(CN, date(2024, 6, 7), 1) == date(2024, 6, 11)  # 10 June: Dragon Boat


def test_negative_count_walks_backwards() -> None:
    """n < 0 gives the n-th working day before start, skipping holidays."""
    assert add_workdays(CN, date(2024, 10, 8), -1) == date(2024, 9, 30)
    assert add_workdays(CN, date(2024, 10, 8), -2) == date(2024, 9, 29)
    assert workdays_between(CN, date(2024, 10, 8), date(2024, 9, 29)) == -2


def test_next_workday_keeps_a_working_day_and_skips_rest_days() -> None:
    """next_workday returns the day itself if it works, else the first working day after."""
    assert next_workday(CN, date(2024, 9, 29)) == date(2024, 9, 29)
    assert next_workday(CN, date(2024, 10, 1)) == date(2024, 10, 8)


# --- calendar months ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2023, 11, 30), 3, date(2024, 2, 29)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2023, 1, 31), 1, date(2023, 2, 28)),
        (date(2024, 3, 31), -1, date(2024, 2, 29)),
        (date(2024, 1, 15), -13, date(2022, 12, 15)),
        (date(2024, 5, 10), 0, date(2024, 5, 10)),
    ],
)
def test_months_keep_the_day_clamped_to_the_month_end(
    start: date, months: int, expected: date
) -> None:
    """add_months keeps the day of month, clamped to the target month's last day."""
    assert add_months(start, months) == expected


def test_month_deadline_on_a_rest_day_stays_without_roll() -> None:
    """Without roll, 1 month from 2024-09-01 ends on 2024-10-01 although it is a holiday."""
    start, month = at("2024-09-01T10:00+08:00"), Duration(1, "months")
    assert last_day(CN, start, month) == date(2024, 10, 1)
    assert due_after(CN, start, month) == at("2024-10-02T00:00+08:00")


def test_month_deadline_on_a_rest_day_rolls_to_the_next_working_day() -> None:
    """With roll, 1 month from 2024-09-01 ends on 2024-10-08, the first working day after."""
    start, month = at("2024-09-01T10:00+08:00"), Duration(1, "months")
    assert last_day(CN, start, month, roll=True) == date(2024, 10, 8)
    assert due_after(CN, start, month, roll=True) == at("2024-10-09T00:00+08:00")


def test_roll_leaves_a_deadline_on_a_working_day_alone() -> None:
    """With roll, a last day that is already a working day does not move."""
    start = at("2024-09-10T10:00+08:00")
    assert last_day(CN, start, Duration(10, "days"), roll=True) == date(2024, 9, 20)


# --- deadlines ---------------------------------------------------------------------------


def test_naive_start_is_refused() -> None:
    """due_after and last_day refuse a datetime without a timezone."""
    with pytest.raises(CalendarError, match="timezone-aware"):
        due_after(CN, datetime(2024, 9, 27, 9), Duration(5, "working_days"))
    with pytest.raises(CalendarError, match="timezone-aware"):
        last_day(CN, datetime(2024, 9, 27, 9), Duration(5, "days"))


def test_day_limits_count_from_the_china_date_of_the_start() -> None:
    """A start of 2024-09-26T20:00Z is 27 September in China, so 10 days end on 7 October."""
    start = datetime(2024, 9, 26, 20, tzinfo=UTC)
    assert last_day(CN, start, Duration(10, "days")) == date(2024, 10, 7)
    assert due_after(CN, start, Duration(2, "weeks")) == at("2024-10-12T00:00+08:00")


def test_hour_and_minute_limits_are_exact_and_never_roll() -> None:
    """Hours and minutes are added to the start exactly, even onto a holiday."""
    start = at("2024-09-30T22:30+08:00")
    assert due_after(CN, start, Duration(3, "hours"), roll=True) == at("2024-10-01T01:30+08:00")
    assert due_after(CN, start, Duration(30, "minutes")) == at("2024-09-30T23:00+08:00")
    assert last_day(CN, start, Duration(3, "hours"), roll=True) == date(2024, 10, 1)


# --- durations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5 working days", Duration(5, "working_days")),
        ("1 working day", Duration(1, "working_days")),
        ("5 workdays", Duration(5, "working_days")),
        ("10 days", Duration(10, "days")),
        ("1 day", Duration(1, "days")),
        ("2 weeks", Duration(2, "weeks")),
        ("3 months", Duration(3, "months")),
        ("1 month", Duration(1, "months")),
        ("3 hours", Duration(3, "hours")),
        ("30 minutes", Duration(30, "minutes")),
        ("  3 MONTHS ", Duration(3, "months")),
        ("0 days", Duration(0, "days")),
        ("5个工作日", Duration(5, "working_days")),
        ("10日", Duration(10, "days")),
        ("10天", Duration(10, "days")),
        ("2周", Duration(2, "weeks")),
        ("3个月", Duration(3, "months")),
        ("3小时", Duration(3, "hours")),
        ("30分钟", Duration(30, "minutes")),
    ],
)
def test_parse_duration_accepts_every_listed_form(text: str, expected: Duration) -> None:
    """Each English and Chinese form reads as its amount and unit."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["five days", "3 fortnights", "", "3月", "3.5 days"])
def test_parse_duration_refuses_garbage_quoting_it_and_listing_the_forms(text: str) -> None:
    """Unreadable text raises CalendarError quoting the text and listing accepted forms."""
    with pytest.raises(CalendarError) as caught:
        parse_duration(text)
    assert repr(text) in str(caught.value)
    assert "5 working days" in str(caught.value) and "5个工作日" in str(caught.value)


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (Duration(5, "working_days"), "5 working days"),
        (Duration(1, "working_days"), "1 working day"),
        (Duration(1, "days"), "1 day"),
        (Duration(3, "months"), "3 months"),
        (Duration(2, "hours"), "2 hours"),
        (Duration(0, "minutes"), "0 minutes"),
    ],
)
def test_duration_prints_canonical_english(duration: Duration, text: str) -> None:
    """str(Duration) is the amount and the unit in English, singular for exactly 1."""
    assert str(duration) == text


def test_negative_duration_is_refused() -> None:
    """A Duration with a negative amount raises CalendarError."""
    with pytest.raises(CalendarError):
        Duration(-1, "days")


# --- properties --------------------------------------------------------------------------

covered_dates = st.dates(
    min_value=date(FIRST_YEAR, 1, 1) + MARGIN, max_value=date(LAST_YEAR, 12, 31) - MARGIN
)


@given(start=covered_dates, n=st.integers(-40, 40))
def test_workdays_between_inverts_add_workdays(start: date, n: int) -> None:
    """workdays_between(a, add_workdays(a, n)) == n, and a non-zero count lands on a working day."""
    end = add_workdays(CN, start, n)
    assert workdays_between(CN, start, end) == n
    if n != 0:
        assert CN.is_workday(end)


@given(day=st.dates(min_value=date(2, 1, 1), max_value=date(9998, 12, 31)), n=st.integers(-12, 12))
def test_add_months_never_raises_and_clamps_the_day(day: date, n: int) -> None:
    """add_months keeps min(day, days in the target month) and moves by exactly n months."""
    moved = add_months(day, n)
    after = date(moved.year + moved.month // 12, moved.month % 12 + 1, 1)
    assert moved.day == min(day.day, (after - timedelta(days=1)).day)
    assert (moved.year * 12 + moved.month) - (day.year * 12 + day.month) == n


@given(st.builds(Duration, st.integers(0, 10**6), st.sampled_from(UNITS)))
def test_duration_text_round_trips(duration: Duration) -> None:
    """parse_duration(str(d)) == d and printing it again gives the same text."""
    assert parse_duration(str(duration)) == duration
    assert str(parse_duration(str(duration))) == str(duration)
