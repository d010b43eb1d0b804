"""The domain's date functions for expressions (``add_workdays``, ``due_date``, ``year``...),
bound to one working-day calendar. Dates are ISO strings; a moment is taken in China time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from .calendar import (
    CHINA_TZ,
    Calendar,
    add_months,
    add_workdays,
    get_calendar,
    parse_offset,
    shift,
    workdays_between,
)
from .errors import CalendarError
from .expressions import guarded

__all__ = ["date_functions"]


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.astimezone(CHINA_TZ).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError as e:
            raise CalendarError(f"{value!r} is not a date (YYYY-MM-DD)") from e
    raise CalendarError(f"{value!r} is not a date")


def date_functions(calendar: str | Calendar) -> dict[str, Callable[..., Any]]:
    """The domain's date functions for CEL, bound to one calendar. Dates are ISO strings."""
    cal = get_calendar(calendar) if isinstance(calendar, str) else calendar

    def add_workdays_(day: Any, n: int) -> str:
        return add_workdays(cal, _as_date(day), int(n)).isoformat()

    def add_months_(day: Any, n: int) -> str:
        return add_months(_as_date(day), int(n)).isoformat()

    def workdays_between_(a: Any, b: Any) -> int:
        return workdays_between(cal, _as_date(a), _as_date(b))

    def days_between(a: Any, b: Any) -> int:
        return (_as_date(b) - _as_date(a)).days

    def date_(value: Any) -> str:
        return _as_date(value).isoformat()

    def due_date(start: Any, duration: str) -> str:
        # '-5 working days' counts backwards, mirroring the forward count
        sign, d = parse_offset(str(duration))
        return shift(cal, _as_date(start), d, sign).isoformat()

    def workdays_before(day: Any, duration: Any) -> str:
        # workdays_before(d, '5 working days') == due_date(d, '-5 working days')
        sign, d = parse_offset(str(duration))
        if d.unit != "working_days" or sign < 0:
            raise CalendarError(
                f"workdays_before counts a positive number of working days, such as "
                f"'5 working days' (got {duration!r}); for other units use due_date(date, "
                f"'-{d}')"
            )
        return shift(cal, _as_date(day), d, -1).isoformat()

    def year(value: Any) -> int:
        # the year of a date, or of a moment in China time (a step at 2026-12-31 20:00 UTC is 2027)
        return _as_date(value).year

    def length(text: Any) -> int:
        # CEL's size() on a string counts UTF-8 bytes in this binding: 3 for one Chinese character
        return len(text) if isinstance(text, str) else len(text or ())

    functions: dict[str, Callable[..., Any]] = {
        "length": length,
        "add_workdays": add_workdays_,
        "add_months": add_months_,
        "workdays_between": workdays_between_,
        "days_between": days_between,
        "date": date_,
        "due_date": due_date,
        "workdays_before": workdays_before,
        "year": year,
    }
    return {name: guarded(name, fn) for name, fn in functions.items()}
