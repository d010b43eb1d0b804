"""Where working days come from: a deployment's file, the official table, or provisional rules.

A year's schedule of holidays and make-up working days (调休) is taken, in this order, from:

1. the deployment's calendar file (``--calendar FILE``, ``XIESHANG_CALENDAR``), which an office
   edits the day the State Council publishes next year's notice;
2. the official table shipped by ``chinesecalendar``;
3. the statutory holidays that the ``holidays`` package computes for China (lunar festivals
   included, no make-up working days). Such a year is **provisional**: a deadline that counts
   its working days says so, and ``calendar reconcile`` moves it once better data arrives.

So the calendar never runs out. A deadline records its *basis*: for each year its count of
working days walked through, the year, the kind of source and a digest of that year's schedule
(``2026:official:1a2b3c;2027:provisional:4d5e6f``), so that a later reconcile can tell which
deadlines were computed on data that has since changed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

import chinese_calendar

from .errors import CalendarFileError, Problem
from .yamlsafe import Path, read_yaml

__all__ = [
    "CalendarChain",
    "SourceKind",
    "Tracking",
    "YearSchedule",
    "parse_calendar_file",
    "read_basis",
]

SourceKind = Literal["file", "official", "provisional"]
_OFFICIAL_YEARS = sorted({d.year for d in (*chinese_calendar.holidays, *chinese_calendar.workdays)})


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:  # pragma: no cover - both are declared dependencies
        return "?"


@dataclass(frozen=True, slots=True)
class YearSchedule:
    """One year's rest days and make-up working days, and where they came from."""

    year: int
    holidays: frozenset[date]
    workdays: frozenset[date]
    source: str
    kind: SourceKind

    @property
    def provisional(self) -> bool:
        return self.kind == "provisional"

    @property
    def digest(self) -> str:
        """Six hex digits that change whenever the year's rest or working days change."""
        text = ",".join(d.isoformat() for d in sorted(self.holidays)) + "|"
        text += ",".join(d.isoformat() for d in sorted(self.workdays))
        return hashlib.sha256(text.encode()).hexdigest()[:6]

    @property
    def tag(self) -> str:
        """``2027:provisional:4d5e6f``: one year of a deadline's basis."""
        return f"{self.year}:{self.kind}:{self.digest}"

    def is_workday(self, day: date) -> bool:
        if day in self.holidays:
            return False
        return day in self.workdays or day.weekday() < 5

    def to_dict(self) -> dict[str, Any]:
        return {
            "year": self.year,
            "kind": self.kind,
            "provisional": self.provisional,
            "source": self.source,
            "holidays": [d.isoformat() for d in sorted(self.holidays)],
            "workdays": [d.isoformat() for d in sorted(self.workdays)],
        }


@cache
def _official(year: int) -> YearSchedule | None:
    if not _OFFICIAL_YEARS or not _OFFICIAL_YEARS[0] <= year <= _OFFICIAL_YEARS[-1]:
        return None
    rest = frozenset(d for d in chinese_calendar.holidays if d.year == year)
    work = frozenset(d for d in chinese_calendar.workdays if d.year == year)
    source = f"chinesecalendar {_package_version('chinesecalendar')}"
    return YearSchedule(year, rest, work, source, "official")


@cache
def _provisional(year: int) -> YearSchedule:
    import holidays

    try:
        found = holidays.country_holidays("CN", years=year)
        rest = frozenset(d for d in found if d.year == year)
    except (NotImplementedError, KeyError, ValueError):  # pragma: no cover - outside its range
        rest = frozenset()
    source = (
        f"holidays {_package_version('holidays')}: statutory holidays of China, computed;"
        " no make-up working days"
    )
    return YearSchedule(year, rest, frozenset(), source, "provisional")


class CalendarChain:
    """The official Chinese working-day calendar of one deployment, for any year.

    Args:
        years: schedules from the deployment's calendar file; for the years they hold they win
            over the package tables.
        origin: where those schedules were read from (a file path), for messages.
    """

    name = "cn_official"

    def __init__(
        self, years: Mapping[int, YearSchedule] | None = None, *, origin: str = ""
    ) -> None:
        self.file_years: dict[int, YearSchedule] = dict(years or {})
        self.origin = origin
        self._cache: dict[int, YearSchedule] = {}

    def schedule(self, year: int) -> YearSchedule:
        """The schedule in force for ``year``: the file's, else the official, else provisional."""
        found = self._cache.get(year)
        if found is None:
            found = self.file_years.get(year) or _official(year) or _provisional(year)
            self._cache[year] = found
        return found

    def is_workday(self, day: date) -> bool:
        """Whether ``day`` is a working day: holidays rest, make-up working days work."""
        return self.schedule(day.year).is_workday(day)

    def is_provisional(self, year: int) -> bool:
        return self.schedule(year).provisional

    def basis(self, years: Iterable[int]) -> str | None:
        """The basis of a date whose counting consulted ``years``; None when it consulted none."""
        return ";".join(self.schedule(y).tag for y in sorted(set(years))) or None

    def changed(self, basis: str) -> list[tuple[str, str]]:
        """The years of ``basis`` whose schedule is no longer the one it was computed on.

        Returns (old tag, new tag) pairs; empty when the basis still holds.
        """
        out = []
        for year, tag in read_basis(basis):
            now = self.schedule(year).tag
            if now != tag:
                out.append((tag, now))
        return out

    def sources(self, years: Iterable[int]) -> dict[int, YearSchedule]:
        return {y: self.schedule(y) for y in years}


class Tracking:
    """A calendar that remembers which years it was asked about, to record a date's basis."""

    def __init__(self, inner: CalendarChain) -> None:
        self.inner = inner
        self.name = inner.name
        self.years: set[int] = set()

    def is_workday(self, day: date) -> bool:
        self.years.add(day.year)
        return self.inner.is_workday(day)

    def basis(self) -> str | None:
        return self.inner.basis(self.years)


def read_basis(basis: str | None) -> list[tuple[int, str]]:
    """``2026:official:1a2b3c;2027:...`` -> [(2026, '2026:official:1a2b3c'), ...]."""
    if not basis:
        return []
    out = []
    for tag in basis.split(";"):
        year, _, _ = tag.partition(":")
        if year.isdigit():
            out.append((int(year), tag))
    return out


def provisional_years(basis: str | None) -> list[int]:
    """The years of ``basis`` that were provisional when it was computed."""
    return [y for y, tag in read_basis(basis) if tag.split(":")[1:2] == ["provisional"]]


# -- the deployment's calendar file --------------------------------------------------------

_KEYS = {"source", "holidays", "workdays"}
_RANGE = re.compile(r"^\s*(\S+?)\s*\.\.\s*(\S+)\s*$")
_MAX_RANGE = 366


def parse_calendar_file(text: str | bytes, file: str = "") -> dict[int, YearSchedule]:
    """Read a calendar file: one block per year, with its ``source``, ``holidays``, ``workdays``.

    ::

        2027:
          source: 国务院办公厅关于2027年部分节假日安排的通知
          holidays: [2027-01-01, 2027-02-05..2027-02-11]
          workdays: [2027-02-14]

    Raises:
        CalendarFileError: every problem in the file, each with its line and a code: XS301 a
            key that is not a year, XS302 an impossible date, XS303 a backwards range, XS304 a
            date listed twice, XS305 a date both holiday and workday, XS306 a date outside its
            year, XS307 an unknown key, XS308 a value of the wrong shape, XS309 a missing source,
            XS310 a make-up working day that is not a weekend day.
    """
    located, problems = read_yaml(text, file)
    years: dict[int, YearSchedule] = {}
    if located is None:
        raise CalendarFileError(problems, file=file)
    doc = located.data
    if not isinstance(doc, dict):
        problems.append(
            located.problem(
                "XS308", "bad-shape", "a calendar file is a mapping of years to blocks", ()
            )
        )
        raise CalendarFileError(problems, file=file)
    for key, block in doc.items():
        path: Path = (str(key),)
        if isinstance(key, bool) or not isinstance(key, int) or not 1900 <= key <= 9999:
            problems.append(
                located.problem("XS301", "not-a-year", f"{key!r} is not a year (e.g. 2027)", path)
            )
            continue
        schedule = _year_block(located, key, block, path, problems)
        if schedule is not None:
            years[key] = schedule
    if problems:
        raise CalendarFileError(problems, file=file)
    return years


def _year_block(
    located: Any, year: int, block: Any, path: Path, problems: list[Problem]
) -> YearSchedule | None:
    if not isinstance(block, dict):
        problems.append(
            located.problem(
                "XS308",
                "bad-shape",
                "a year's block is a mapping with source, holidays and workdays",
                path,
            )
        )
        return None
    before = len(problems)
    for key in block:
        if key not in _KEYS:
            problems.append(
                located.problem(
                    "XS307",
                    "unknown-key",
                    f"unknown key {key!r}; a year has: {', '.join(sorted(_KEYS))}",
                    (*path, str(key)),
                )
            )
    source = block.get("source")
    if not isinstance(source, str) or not source.strip():
        problems.append(
            located.problem(
                "XS309",
                "missing-source",
                "each year needs a source: the notice its dates come from (free text)",
                (*path, "source"),
            )
        )
    rest = _dates(located, year, block.get("holidays", []), (*path, "holidays"), problems)
    work = _dates(located, year, block.get("workdays", []), (*path, "workdays"), problems)
    for day in sorted(set(rest) & set(work)):
        problems.append(
            located.problem(
                "XS305",
                "holiday-and-workday",
                f"{day.isoformat()} is both a holiday and a make-up working day",
                work[day],
            )
        )
    for day, where in work.items():
        if day.weekday() < 5:
            problems.append(
                located.problem(
                    "XS310",
                    "workday-not-weekend",
                    f"{day.isoformat()} is a {day.strftime('%A')}: workdays lists only weekend"
                    " days that are worked (调休)",
                    where,
                )
            )
    if len(problems) > before:
        return None
    return YearSchedule(year, frozenset(rest), frozenset(work), str(source).strip(), "file")


def _dates(
    located: Any, year: int, value: Any, path: Path, problems: list[Problem]
) -> dict[date, Path]:
    """The dates of a holidays or workdays list, each with where it was written."""
    if value is None:
        return {}
    if not isinstance(value, list):
        problems.append(
            located.problem(
                "XS308",
                "bad-shape",
                "a list of dates (YYYY-MM-DD) or ranges (YYYY-MM-DD..YYYY-MM-DD)",
                path,
            )
        )
        return {}
    out: dict[date, Path] = {}
    for i, item in enumerate(value):
        where = (*path, i)
        days = _item(located, year, item, where, problems)
        for day in days:
            if day in out:
                problems.append(
                    located.problem(
                        "XS304",
                        "duplicate-date",
                        f"{day.isoformat()} is listed twice (first at {_show(out[day])})",
                        where,
                    )
                )
            else:
                out[day] = where
    return out


def _show(path: Path) -> str:
    from .yamlsafe import format_path

    return format_path(path)


def _item(located: Any, year: int, item: Any, where: Path, problems: list[Problem]) -> list[date]:
    text = str(item) if isinstance(item, str | int) and not isinstance(item, bool) else None
    if text is None:
        problems.append(
            located.problem(
                "XS308", "bad-shape", f"{item!r} is not a date or a range of dates", where
            )
        )
        return []
    m = _RANGE.match(text)
    ends = [m[1], m[2]] if m else [text]
    parsed: list[date] = []
    for end in ends:
        try:
            parsed.append(date.fromisoformat(end.strip()))
        except ValueError:
            problems.append(
                located.problem(
                    "XS302",
                    "bad-date",
                    f"{end.strip()!r} is not a date (YYYY-MM-DD, e.g. {year}-10-01)",
                    where,
                )
            )
            return []
    for day in parsed:
        if day.year != year:
            problems.append(
                located.problem(
                    "XS306",
                    "outside-year",
                    f"{day.isoformat()} is not in {year}; put it under its own year",
                    where,
                )
            )
            return []
    if len(parsed) == 1:
        return parsed
    first, last = parsed
    if last < first:
        problems.append(
            located.problem(
                "XS303",
                "backwards-range",
                f"the range {text!r} ends before it starts; write {last}..{first}",
                where,
            )
        )
        return []
    span = (last - first).days
    if span > _MAX_RANGE:  # pragma: no cover - both ends are in one year
        return []
    return [first + timedelta(days=i) for i in range(span + 1)]
