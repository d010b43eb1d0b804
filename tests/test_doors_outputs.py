"""What leaves for people: workbooks whose rates are numbers in every sheet, and diagrams whose
Chinese labels name fonts that have the glyphs, with fallbacks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from xieshang.adapters.common import DiagramFormat, draw
from xieshang.adapters.reports import Rate
from xieshang.adapters.reports.model import Report
from xieshang.adapters.reports.render import write_xlsx
from xieshang.shared import to_dot
from xieshang.workflows import bundled


def _report() -> Report:
    rep = Report("handling", "提案办理情况", 2024, None)
    rep.add("总体", "已办结", 118, Rate(118, 118))
    rep.add("总体", "重点提案", 3)
    rep.add("评价", "不满意", 0, Rate(0, 0))
    rep.wide["承办单位"] = (
        ["承办单位", "交办", "满意率", "答复率"],
        [["市教育局", 40, "97.5%", Rate(39, 40)], ["市住建局", 0, "—", Rate(0, 0)]],
    )
    return rep


def test_every_rate_in_every_sheet_is_a_percentage_number(tmp_path: Path) -> None:
    """The lines' rates and the per-unit sheet's rates (given as Rate or as its text) are
    numbers formatted 0.0%; nothing to divide stays '—'; counts stay plain numbers."""
    from openpyxl import load_workbook

    out = tmp_path / "r.xlsx"
    write_xlsx(_report(), out)
    book = load_workbook(out)
    main, units = book.worksheets
    assert (main["D3"].value, main["D3"].number_format) == (1.0, "0.0%")
    assert (main["C4"].value, main["D4"].value) == (3, None)
    assert (main["D5"].value, main["D5"].number_format) == ("—", "General")
    assert units.title == "承办单位"
    assert [(c.value, c.number_format) for c in units[2]] == [
        ("市教育局", "General"),
        (40, "General"),
        (0.975, "0.0%"),
        (0.975, "0.0%"),
    ]
    assert [c.value for c in units[3]] == ["市住建局", 0, "—", "—"]


def test_a_real_handling_workbook_has_numeric_unit_rates(tmp_path: Path) -> None:
    """The handling report's unit sheet from a database: its satisfaction rate is a number."""
    from datetime import datetime, timedelta, timezone

    from openpyxl import load_workbook

    from xieshang import Actor, Engine, FixedClock
    from xieshang.adapters.reports import handling_report
    from xieshang.adapters.sql import open_store

    org = "demo_city_cppcc"
    member = Actor.of("m1", "member", org=org)
    staff = Actor.of("s1", "proposal_committee", org=org)
    office = Actor.of("o1", "supervision_office", org=org)
    unit = Actor.of("u1", "handling_unit", org=org, unit="housing")
    url = f"sqlite:///{tmp_path / 'r.db'}"
    store = open_store(url)
    clock = FixedClock(datetime(2024, 3, 4, 9, tzinfo=timezone(timedelta(hours=8))))
    engine = Engine(store, bundled(), clock)
    pid = engine.start("proposal", {"title": "提案", "first_proposer": "m1"}, member).id
    engine.fire(pid, "submit", member, {"category": "society"})
    engine.fire(pid, "start_review", staff)
    engine.fire(pid, "file", staff, {"number": "0001"})
    engine.fire(pid, "assign", office, {"mode": "sole", "units": ["housing"]})
    cid = engine.children(pid)[0].id
    engine.fire(cid, "acknowledge", unit, {"contact_person": "联系人"})
    engine.fire(cid, "contact_proposer", unit, {"mode": "face_to_face"})
    reply = {"reply_class": "A", "reply_text": "答复函", "signer": "局长"}
    engine.fire(cid, "draft_reply", unit, reply)
    engine.fire(cid, "submit_reply", unit)
    engine.fire(cid, "approve_reply", office)
    engine.fire(pid, "evaluate", member, {"satisfaction": "satisfied"})
    store.close()
    out = tmp_path / "handling.xlsx"
    handling_report(url, 2024, org).write_xlsx(out)
    sheet = load_workbook(out)["承办单位"]
    header = [c.value for c in sheet[1]]
    rate = sheet.cell(row=2, column=header.index("满意率") + 1)
    assert (rate.value, rate.number_format) == (1.0, "0.0%")


def test_diagrams_name_cjk_fonts_that_fall_back() -> None:
    """The dot text asks for Noto Sans CJK (Debian: fonts-noto-cjk), then the CJK fonts of
    other systems, then sans-serif, for the graph, its nodes and its edges."""
    dot = to_dot(bundled().get("proposal").definition)
    fonts = "Noto Sans CJK SC,Source Han Sans SC,WenQuanYi Micro Hei,Microsoft YaHei,PingFang SC,"
    assert dot.count(f'fontname="{fonts}sans-serif"') == 3


@pytest.mark.skipif(shutil.which("dot") is None, reason="SVG needs graphviz")
def test_svg_text_carries_the_font_list() -> None:
    """Each label of the SVG names the whole list, so a viewer without Noto falls back."""
    svg = draw(bundled().get("proposal").definition, DiagramFormat.svg, timeout=120).decode()
    assert 'font-family="Noto Sans CJK SC,Source Han Sans SC,' in svg
    assert svg.count("PingFang SC,sans-serif") == svg.count("<text ")


def test_the_readme_names_the_debian_font_package() -> None:
    """Whoever draws SVG on Debian is told which package has the glyphs."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    assert "fonts-noto-cjk" in readme
