"""Working days, calendar months and durations on the official Chinese calendar.

Working days follow the State Council's yearly holiday notice (via the ``chinesecalendar``
package): public holidays are rest days and make-up working days (调休) are working days. Counting
never includes the day it starts from. A limit in calendar months keeps its day of month, clamped
to the month's end; day-based deadlines fall at the end of their last day, China time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Literal, Protocol, get_args

import chinese_calendar

from .errors import CalendarError

CHINA_TZ = timezone(timedelta(hours=8))

Unit = Literal["working_days", "days", "weeks", "months", "hours", "minutes"]
_UNITS: tuple[Unit, ...] = get_args(Unit)
_DAY_UNITS = frozenset({"working_days", "days", "weeks", "months"})

_YEARS = sorted({d.year for d in (*chinese_calendar.holidays, *chinese_calendar.workdays)})
_COVERED_YEARS = (_YEARS[0], _YEARS[-1])


class Calendar(Protocol):
    """Tells working days from rest days."""

    name: str

    def is_workday(self, day: date) -> bool: ...


class ChineseOfficialCalendar:
    """The official calendar: holidays rest, make-up working days (调休) work."""

    name = "cn_official"

    def is_workday(self, day: date) -> bool:
        """Whether ``day`` is a working day.

        Raises:
            CalendarError: ``day`` lies outside the years the calendar data covers.
        """
        first, last = _COVERED_YEARS
        if not first <= day.year <= last:
            raise CalendarError(
                f"no official calendar data for {day.isoformat()}: the installed chinesecalendar"
                f" covers {first}-01-01 to {last}-12-31; upgrade it for later years",
                day=day.isoformat(),
                covered=[first, last],
            )
        return _official_workday(day)


@lru_cache(maxsize=16384)
def _official_workday(day: date) -> bool:
    # chinese_calendar re-checks its range on every call; one cached answer per day is enough
    return bool(chinese_calendar.is_workday(day))


class WeekdayCalendar:
    """Monday to Friday are working days; holidays are ignored."""

    name = "weekdays"

    def is_workday(self, day: date) -> bool:
        """Whether ``day`` is a Monday to Friday."""
        return day.weekday() < 5


_CALENDARS: dict[str, type[ChineseOfficialCalendar | WeekdayCalendar]] = {
    ChineseOfficialCalendar.name: ChineseOfficialCalendar,
    WeekdayCalendar.name: WeekdayCalendar,
}
CALENDAR_NAMES: tuple[str, ...] = tuple(_CALENDARS)


def get_calendar(name: str) -> Calendar:
    """Return the calendar called ``name``.

    Raises:
        CalendarError: no calendar has that name; the message lists the known names.
    """
    if name not in _CALENDARS:
        raise CalendarError(
            f"unknown calendar {name!r}; known: {', '.join(CALENDAR_NAMES)}",
            name=name,
            allowed=list(CALENDAR_NAMES),
        )
    return _CALENDARS[name]()


def _shift(day: date, days: int) -> date:
    try:
        return day + timedelta(days=days)
    except OverflowError as e:
        raise CalendarError(f"{day} + {days} days is past the supported dates", day=str(day)) from e


def add_workdays(cal: Calendar, start: date, n: int) -> date:
    """Return the ``n``-th working day after ``start`` (before it when ``n`` < 0).

    ``start`` itself never counts; ``n == 0`` returns ``start``.

    Raises:
        CalendarError: the walk leaves the dates ``cal`` can answer for.
    """
    step = 1 if n > 0 else -1
    day, remaining = start, abs(n)
    while remaining:
        day = _shift(day, step)
        if cal.is_workday(day):
            remaining -= 1
    return day


def workdays_between(cal: Calendar, start: date, end: date) -> int:
    """Count the working days walked from ``start`` to ``end`` (``start`` out, ``end`` in).

    Forward: the working days d with start < d <= end. Backward: minus those with
    end <= d < start, mirroring ``add_workdays`` so that
    ``workdays_between(cal, a, add_workdays(cal, a, n)) == n`` for every ``n``.
    """
    step = 1 if end >= start else -1
    count, day = 0, start
    while day != end:
        day = _shift(day, step)
        count += cal.is_workday(day)
    return step * count


def _days_in_month(year: int, month: int) -> int:
    if month == 12:
        return 31
    return (date(year, month + 1, 1) - date(year, month, 1)).days


def add_months(day: date, n: int) -> date:
    """Return ``day`` moved by ``n`` calendar months, clamped to the month's end.

    2023-11-30 + 3 months is 2024-02-29. ``n`` may be negative.

    Raises:
        CalendarError: the result would be outside years 1 to 9999.
    """
    year, month0 = divmod(day.year * 12 + day.month - 1 + n, 12)
    if not 1 <= year <= 9999:
        raise CalendarError(f"{day} + {n} months is outside years 1 to 9999", day=str(day))
    return date(year, month0 + 1, min(day.day, _days_in_month(year, month0 + 1)))


def next_workday(cal: Calendar, day: date) -> date:
    """Return ``day`` if it is a working day, else the next working day."""
    return day if cal.is_workday(day) else add_workdays(cal, day, 1)


_SINGULAR = {u: u.removesuffix("s").replace("_", " ") for u in _UNITS}
_EN_WORDS: dict[str, Unit] = {**{w: u for u, w in _SINGULAR.items()}, "workday": "working_days"}
_ZH_WORDS: dict[str, Unit] = {"工作日": "working_days", "日": "days", "天": "days", "周": "weeks"}
_ZH_WORDS |= {"星期": "weeks", "月": "months", "小时": "hours", "分钟": "minutes"}
_EN_RE = re.compile(r"(\d+)\s+(working\s+days?|workdays?|days?|weeks?|months?|hours?|minutes?)")
_ZH_RE = re.compile(r"(\d+)\s*(个?工作日|日|天|周|个?星期|个月|个?小时|分钟)")
_ACCEPTED = (
    "'5 working days', '1 working day', '5 workdays', '10 days', '2 weeks', '3 months',"
    " '3 hours', '30 minutes', '5个工作日', '10日', '10天', '2周', '3个月', '3小时', '30分钟'"
)


@dataclass(frozen=True, slots=True)
class Duration:
    """A time limit: a non-negative whole ``amount`` of a ``unit``."""

    amount: int
    unit: Unit

    def __post_init__(self) -> None:
        if type(self.amount) is not int or self.amount < 0 or self.unit not in _UNITS:
            raise CalendarError(
                f"a duration needs a whole amount >= 0 and a unit in {', '.join(_UNITS)}"
                f" (got {self.amount!r} {self.unit!r})",
                amount=repr(self.amount),
                unit=repr(self.unit),
            )

    def __str__(self) -> str:
        word = _SINGULAR[self.unit] if self.amount == 1 else self.unit.replace("_", " ")
        return f"{self.amount} {word}"


def parse_duration(text: str) -> Duration:
    """Read a duration such as ``"5 working days"``, ``"3 months"`` or ``"5个工作日"``.

    Raises:
        CalendarError: the text is not one of the accepted forms; the message lists them.
    """
    if not isinstance(text, str):
        raise CalendarError(f"a duration is text, not {type(text).__name__} {text!r}", text=text)
    cleaned = text.strip().lower()
    if m := _EN_RE.fullmatch(cleaned):
        unit = _EN_WORDS[re.sub(r"\s+", " ", m[2]).removesuffix("s")]
    elif m := _ZH_RE.fullmatch(cleaned):
        unit = _ZH_WORDS[m[2].removeprefix("个")]
    else:
        raise CalendarError(
            f"cannot read the duration {text!r}; accepted forms: {_ACCEPTED}"
            " (the amount is a whole number >= 0)",
            text=text,
        )
    return Duration(int(m[1]), unit)


def _require_aware(start: datetime) -> None:
    if not isinstance(start, datetime) or start.utcoffset() is None:
        raise CalendarError(f"a deadline needs a timezone-aware start (got {start!r})")


def _last_day(cal: Calendar, start: datetime, duration: Duration, roll: bool) -> date:
    first = start.astimezone(CHINA_TZ).date()
    if duration.unit == "working_days":
        end = add_workdays(cal, first, duration.amount)
    elif duration.unit == "months":
        end = add_months(first, duration.amount)
    else:
        end = _shift(first, duration.amount * (7 if duration.unit == "weeks" else 1))
    return next_workday(cal, end) if roll else end


def due_after(
    cal: Calendar, start: datetime, duration: Duration, *, roll: bool = False
) -> datetime:
    """Return the moment a limit of ``duration`` running from ``start`` expires.

    Day-based units end at midnight after their last allowed day, China time; with ``roll``
    a last day that is a rest day moves to the next working day. Hours and minutes are added
    to ``start`` exactly and never roll.

    Raises:
        CalendarError: ``start`` is naive, or the dates leave what ``cal`` can answer for.
    """
    _require_aware(start)
    if duration.unit not in _DAY_UNITS:
        minutes = duration.amount * (60 if duration.unit == "hours" else 1)
        try:
            return start + timedelta(minutes=minutes)
        except OverflowError as e:
            raise CalendarError(f"{start} + {duration} is past the supported dates") from e
    end = _last_day(cal, start, duration, roll)
    return datetime.combine(_shift(end, 1), time(), tzinfo=CHINA_TZ)


def last_day(cal: Calendar, start: datetime, duration: Duration, *, roll: bool = False) -> date:
    """Return the last allowed day (China time) of a limit of ``duration`` from ``start``.

    For hours and minutes this is the date of the exact due moment.

    Raises:
        CalendarError: ``start`` is naive, or the dates leave what ``cal`` can answer for.
    """
    _require_aware(start)
    if duration.unit not in _DAY_UNITS:
        return due_after(cal, start, duration).astimezone(CHINA_TZ).date()
    return _last_day(cal, start, duration, roll)
