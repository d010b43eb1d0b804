"""The renderers of a report: a terminal table (rich), JSON, CSV and an xlsx workbook."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from .model import Report

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


def write_xlsx(rep: Report, path: Path) -> None:
    """A workbook: the lines (rates as percent-formatted numbers), then one sheet per wide
    table."""
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
        # rates as numbers with a percent format: the office can sum and chart them
        pct = None if ln.rate is None else ln.rate.percent
        ws.append(
            [
                ln.section,
                ln.item,
                "" if ln.count is None else ln.count,
                "—"
                if ln.rate is not None and pct is None
                else (None if pct is None else pct / 100),
            ]
        )
        if pct is not None:
            ws.cell(row=ws.max_row, column=4).number_format = "0.0%"
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
            sheet.append(row)
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
