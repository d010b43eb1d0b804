"""Working days, calendar months and durations on the official Chinese calendar.

Working days follow the State Council's yearly holiday notice (the deployment's calendar file,
then the ``chinesecalendar`` table, then provisional statutory holidays: see
:mod:`.schedules`): public holidays are rest days and make-up working days (调休) are working
days. Counting never includes the day it starts from. A limit in calendar months keeps its day
of month, clamped to the month's end; day-based deadlines fall at the end of their last day,
China time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Literal, Protocol, get_args

from .errors import CalendarError
from .schedules import CalendarChain, Tracking

CHINA_TZ = timezone(timedelta(hours=8))

Unit = Literal["working_days", "days", "weeks", "months", "hours", "minutes"]
_UNITS: tuple[Unit, ...] = get_args(Unit)
_DAY_UNITS = frozenset({"working_days", "days", "weeks", "months"})


class Calendar(Protocol):
    """Tells working days from rest days."""

    name: str

    def is_workday(self, day: date) -> bool: ...


class WeekdayCalendar:
    """Monday to Friday are working days; holidays are ignored."""

    name = "weekdays"

    def is_workday(self, day: date) -> bool:
        """Whether ``day`` is a Monday to Friday."""
        return day.weekday() < 5


CALENDAR_NAMES: tuple[str, ...] = (CalendarChain.name, WeekdayCalendar.name)
_DEFAULT_CHAIN = CalendarChain()


def get_calendar(name: str, chain: CalendarChain | None = None) -> Calendar:
    """Return the calendar called ``name``: ``cn_official`` is ``chain`` (the deployment's
    calendar; the package tables alone when None), ``weekdays`` ignores holidays.

    Raises:
        CalendarError: no calendar has that name; the message lists the known names.
    """
    if name == CalendarChain.name:
        return chain if chain is not None else _DEFAULT_CHAIN
    if name == WeekdayCalendar.name:
        return WeekdayCalendar()
    raise CalendarError(
        f"unknown calendar {name!r}; known: {', '.join(CALENDAR_NAMES)}",
        name=name,
        allowed=list(CALENDAR_NAMES),
    )


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
_ZH_UNIT: dict[Unit, str] = {
    "working_days": "个工作日",
    "days": "天",
    "weeks": "周",
    "months": "个月",
    "hours": "小时",
    "minutes": "分钟",
}
_EN_RE = re.compile(
    r"([+-]?\d+)\s+(working\s+days?|workdays?|days?|weeks?|months?|hours?|minutes?)"
)
_ZH_RE = re.compile(r"([+-]?\d+)\s*(个?工作日|日|天|周|个?星期|个月|个?小时|分钟)")
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

    @property
    def zh(self) -> str:
        """The duration in Chinese: ``15个工作日``, ``3个月``, ``10天``."""
        return f"{self.amount}{_ZH_UNIT[self.unit]}"


def parse_duration(text: str) -> Duration:
    """Read a duration such as ``"5 working days"``, ``"3 months"`` or ``"5个工作日"``.

    Raises:
        CalendarError: the text is not one of the accepted forms (the message lists them), or
            it is negative: a time limit is not (see :func:`parse_offset`).
    """
    sign, duration = parse_offset(text)
    if sign < 0:
        raise CalendarError(
            f"a time limit cannot be negative ({text!r}); a negative duration is allowed only "
            "where a date is computed from one (due_date, workdays_before)",
            text=text,
        )
    return duration


def parse_offset(text: str) -> tuple[int, Duration]:
    """Read a signed duration: ``"-5 working days"`` is ``(-1, Duration(5, "working_days"))``.

    A leading ``+`` or ``-`` gives the direction (none: forward); ``-0 days`` is forward.

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
            " (the amount is a whole number, '-' before it counts backwards where a date is"
            " computed)",
            text=text,
        )
    amount = int(m[1])
    return (-1 if amount < 0 else 1), Duration(abs(amount), unit)


def shift(cal: Calendar, day: date, duration: Duration, sign: int = 1) -> date:
    """Return ``day`` moved ``duration`` forward (``sign`` 1) or backward (``sign`` -1).

    Working days never count ``day`` itself, in either direction, so that moving back and
    counting forward again agree: ``workdays_between(cal, shift(cal, d, n, -1), d) == n.amount``.
    Months keep the day of the month, clamped to the month's end.

    Raises:
        CalendarError: ``duration`` is in hours or minutes (a date moves by whole days), or the
            result leaves the dates ``cal`` can answer for.
    """
    n = sign * duration.amount
    if duration.unit == "working_days":
        return add_workdays(cal, day, n)
    if duration.unit == "months":
        return add_months(day, n)
    if duration.unit not in _DAY_UNITS:
        raise CalendarError(
            f"a date moves by days, weeks, months or working days, not {str(duration)!r}",
            duration=str(duration),
        )
    return _shift(day, n * (7 if duration.unit == "weeks" else 1))


def _require_aware(start: datetime) -> None:
    if not isinstance(start, datetime) or start.utcoffset() is None:
        raise CalendarError(f"a deadline needs a timezone-aware start (got {start!r})")


def _last_day(cal: Calendar, start: datetime, duration: Duration, roll: bool) -> date:
    end = shift(cal, start.astimezone(CHINA_TZ).date(), duration)
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


def uses_calendar(duration: Duration, *, roll: bool = False) -> bool:
    """Whether a limit's end depends on which days are working days."""
    return duration.unit == "working_days" or (roll and duration.unit in _DAY_UNITS)


def deadline(
    cal: Calendar, start: datetime, duration: Duration, *, roll: bool = False
) -> tuple[datetime, str | None]:
    """``due_after``, and the calendar basis it was counted on (None: it needed no calendar,
    or the calendar never changes).

    Raises:
        CalendarError: ``start`` is naive, or the dates leave what ``cal`` can answer for.
    """
    if not isinstance(cal, CalendarChain) or not uses_calendar(duration, roll=roll):
        return due_after(cal, start, duration, roll=roll), None
    tracking = Tracking(cal)
    return due_after(tracking, start, duration, roll=roll), tracking.basis()


def before(cal: Calendar, due: datetime, duration: Duration) -> datetime:
    """The moment ``duration`` before a deadline ``due``.

    Hours and minutes count back from the due moment exactly. Day-based limits count back
    from the deadline's last day and give the start of that day: 15 days before a deadline
    on 06-15 (due at 06-16 00:00) is 05-31 00:00, China time.
    """
    if duration.unit not in _DAY_UNITS:
        return due - timedelta(minutes=duration.amount * (60 if duration.unit == "hours" else 1))
    last = (due - timedelta(microseconds=1)).astimezone(CHINA_TZ).date()
    day = shift(cal, last, duration, -1)
    return datetime.combine(day, time(), tzinfo=CHINA_TZ)
