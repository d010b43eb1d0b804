"""The renderers of a report: a terminal table (rich), JSON, CSV and an xlsx workbook."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

from .model import Rate, Report

__all__ = ["render_table", "to_csv", "to_json", "write_csv", "write_xlsx"]


def to_json(rep: Report) -> str:
    """The figures and rates as JSON (:meth:`Report.to_dict`), keys sorted."""
    return rep.to_json()


def to_csv(rep: Report) -> str:
    """The lines as CSV under the title, with the headers of :attr:`Report.HEADERS`."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([rep.title])
    writer.writerow(Report.HEADERS)
    writer.writerows(rep.rows())
    return buf.getvalue()


def write_csv(rep: Report, path: Path) -> None:
    """:func:`to_csv` in a file."""
    # UTF-8 with a byte-order mark: what spreadsheet programs need to read Chinese text
    path.write_text(to_csv(rep), encoding="utf-8-sig", newline="")


_PERCENT_TEXT = re.compile(r"^(-?\d+(?:\.(\d+))?)%$")


def _xlsx_cell(value: Any) -> tuple[Any, str | None]:
    """A cell's value and number format: a rate (a :class:`Rate`, or a rate's text such as
    ``30.5%``) as the number it stands for, formatted as a percentage, so that the office can
    sum and chart it; ``—`` (nothing to divide) and anything else as it is."""
    if isinstance(value, Rate):
        percent = value.percent
        return ("—", None) if percent is None else (percent / 100, "0.0%")
    if isinstance(value, str):
        found = _PERCENT_TEXT.match(value)
        if found is not None:
            decimals = len(found.group(2) or "")
            return float(found.group(1)) / 100, "0." + "0" * decimals + "%" if decimals else "0%"
    return value, None


def _append(sheet: Any, row: list[Any]) -> None:
    sheet.append([_xlsx_cell(v)[0] for v in row])
    for column, value in enumerate(row, start=1):
        number_format = _xlsx_cell(value)[1]
        if number_format is not None:
            sheet.cell(row=sheet.max_row, column=column).number_format = number_format


def write_xlsx(rep: Report, path: Path) -> None:
    """A workbook: the lines, then one sheet per wide table; in every sheet a rate is a number
    formatted as a percentage."""
    from openpyxl import Workbook  # type: ignore[import-untyped]
    from openpyxl.styles import Font  # type: ignore[import-untyped]

    wb = Workbook()
    ws = wb.active
    ws.title = rep.title[:31]
    ws.append([rep.title])
    ws["A1"].font = Font(bold=True, size=14)
    ws.append(list(Report.HEADERS))
    for cell in ws[2]:
        cell.font = Font(bold=True)
    for ln in rep.lines:
        rate = None if ln.rate is None else ln.rate
        _append(ws, [ln.section, ln.item, "" if ln.count is None else ln.count, rate])
    for note in rep.notes:
        ws.append([Report.NOTES, note])
    for col, width in zip("ABCD", (18, 34, 10, 10), strict=True):
        ws.column_dimensions[col].width = width
    for name, (headers, rows) in rep.wide.items():
        sheet = wb.create_sheet(name[:31])
        sheet.append(headers)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            _append(sheet, list(row))
        sheet.column_dimensions["A"].width = 20
    wb.save(path)


def render_table(rep: Report) -> Any:
    """The report for a terminal: its lines, then one wide table per :attr:`Report.wide`."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    title = rep.title + (f"（{rep.org}）" if rep.org else "")
    table = Table(title=title, show_lines=False)
    for h, justify in zip(Report.HEADERS, ("left", "left", "right", "right"), strict=True):
        table.add_column(h, justify=justify)  # type: ignore[arg-type]
    last = None
    for row in rep.rows():
        if row[0] in rep.detail or row[0] == Report.NOTES:
            continue
        section = row[0] if row[0] != last else ""
        last = row[0]
        table.add_row(section, row[1], str(row[2]), row[3])
    parts: list[Any] = [table]
    for name, (headers, rows) in rep.wide.items():
        wide = Table(title=f"{rep.title}：{name}", box=box.SIMPLE_HEAD, padding=(0, 1))
        for i, h in enumerate(headers):
            wide.add_column(h, justify="left" if i == 0 else "right", no_wrap=True)
        for r in rows:
            wide.add_row(*(str(v) for v in r))
        parts.append(wide)
    parts += [Text(f"{Report.NOTES}：{note}") for note in rep.notes]
    return Group(*parts)
