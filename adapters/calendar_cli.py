"""``xieshang calendar``: the working-day calendar for office staff.

``show YEAR`` lists a year's holidays and make-up working days with their source (marking a
provisional year); ``check FILE`` lists every problem of a calendar file with its line and code;
``add-workdays DATE N`` answers "what date is N working days after DATE"; ``reconcile`` moves the
pending deadlines counted on calendar data that has since changed. The calendar is the one the
root ``--calendar`` / ``XIESHANG_CALENDAR`` names, over the package tables.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from xieshang import CalendarChain, CalendarFileError, Usage, parse_calendar_file
from xieshang.adapters.cli import JsonFlag, _emit_json, _err, _out, _reporting, _state
from xieshang.adapters.settings import load_calendar
from xieshang.shared import Tracking, add_workdays

__all__ = ["register_cli"]

_WEEKDAYS = "一二三四五六日"


def _chain(ctx: typer.Context) -> CalendarChain:
    return load_calendar(_state(ctx).settings().calendar)


def _day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Usage(f"{what} {text!r} is not a date (YYYY-MM-DD)", what) from None


def register_cli(app: typer.Typer) -> None:
    """Add the ``calendar`` command group to the main app."""
    group = typer.Typer(
        help="The working-day calendar: show a year, check a file, count days, reconcile.",
        no_args_is_help=True,
    )
    app.add_typer(group, name="calendar")

    @group.command("show")
    def show(
        ctx: typer.Context,
        year: Annotated[int, typer.Argument(help="The year, e.g. 2027.", min=1900, max=9999)],
        as_json: JsonFlag = False,
    ) -> None:
        """A year's holidays and make-up working days, with their source."""
        with _reporting(as_json):
            schedule = _chain(ctx).schedule(year)
            if as_json:
                _emit_json(schedule.to_dict())
                return
            kind = {
                "file": "本单位日历文件 deployment file",
                "official": "官方节假日表 official table",
                "provisional": "暂定 provisional：仅法定节假日，无调休",
            }[schedule.kind]
            out = _out()
            out.print(Text(f"{year}年 · {kind}", style="yellow" if schedule.provisional else ""))
            out.print(Text(f"依据 source: {schedule.source}"))
            table = Table("日期 date", "星期", "类别 kind")
            days = [(d, "放假 holiday") for d in schedule.holidays]
            days += [(d, "调休上班 make-up working day") for d in schedule.workdays]
            for d, what in sorted(days):
                table.add_row(d.isoformat(), _WEEKDAYS[d.weekday()], what)
            out.print(table)
            if schedule.provisional:
                _err().print(
                    Text(
                        f"{year} is provisional: enter the State Council's notice in the "
                        "calendar file, then run `xieshang calendar reconcile`",
                        style="yellow",
                    )
                )

    @group.command("check")
    def check(
        file: Annotated[Path, typer.Argument(help="The calendar file (YAML).")],
        as_json: JsonFlag = False,
    ) -> None:
        """Check a calendar file: every problem with its line and a code; exit 1 if any."""
        with _reporting(as_json):
            if not file.is_file():
                raise Usage(f"{str(file)!r}: no such file", "FILE")
            try:
                years = parse_calendar_file(file.read_bytes(), str(file))
            except CalendarFileError as e:
                if as_json:
                    _emit_json({"file": str(file), "ok": False, "problems": e.details["problems"]})
                else:
                    for p in e.problems:
                        _err().print(Text(str(p), style="red"))
                raise typer.Exit(1) from None
            body: dict[str, Any] = {"file": str(file), "ok": True, "years": sorted(years)}
            if as_json:
                _emit_json(body)
            else:
                shown = ", ".join(str(y) for y in sorted(years)) or "none"
                _out().print(Text(f"✓ {file}: years {shown}", style="green"))

    @group.command("add-workdays")
    def add_workdays_command(
        ctx: typer.Context,
        day: Annotated[str, typer.Argument(metavar="DATE", help="The start, YYYY-MM-DD.")],
        n: Annotated[int, typer.Argument(help="How many working days (negative: before).")],
        as_json: JsonFlag = False,
    ) -> None:
        """The date N working days after DATE (DATE itself never counts)."""
        with _reporting(as_json):
            start = _day(day, "DATE")
            tracking = Tracking(_chain(ctx))
            result = add_workdays(tracking, start, n)
            provisional = sorted(y for y in tracking.years if tracking.inner.is_provisional(y))
            body = {"from": start.isoformat(), "working_days": n, "date": result.isoformat()}
            body["provisional"] = provisional
            if as_json:
                _emit_json(body)
                return
            years = ", ".join(map(str, provisional))
            note = f"（暂定 provisional: {years}）" if provisional else ""
            _out().print(Text(f"{result.isoformat()} 星期{_WEEKDAYS[result.weekday()]}{note}"))

    @group.command("reconcile")
    def reconcile(
        ctx: typer.Context,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Show what would move; write nothing.")
        ] = False,
        as_json: JsonFlag = False,
    ) -> None:
        """Move pending deadlines and timers counted on calendar data that has since changed."""
        with _reporting(as_json):
            report = _state(ctx).engine().reconcile_calendar(dry_run=dry_run)
            if as_json:
                _emit_json(report.to_dict())
                return
            verb = "would move" if dry_run else "moved"
            for c in report.changes:
                _out().print(
                    Text(
                        f"{c['instance_id']} {c['workflow']}: {c['due_before']} → {c['due_after']}"
                        f", {len(c['timers'])} timer(s)"
                    )
                )
            _out().print(Text(f"{verb} {len(report.changes)} instance(s)"))
