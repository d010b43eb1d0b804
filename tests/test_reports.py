"""The year's reports: the published seed figures come out exactly, in every format."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xieshang import Actor, Engine, FixedClock, Registry
from xieshang.adapters.cli import app
from xieshang.adapters.reports import Rate, handling_report, report, review_report
from xieshang.adapters.sql import open_store
from xieshang.workflows import bundled

CN = timezone(timedelta(hours=8))
ORG = "demo_city_cppcc"
MEMBER = Actor.of("m1", "member", org=ORG)
STAFF = Actor.of("s1", "proposal_committee", org=ORG)
OFFICE = Actor.of("o1", "supervision_office", org=ORG)

# A small workflow with the proposal's fields, to put many filed proposals in the store fast:
# the report code reads the same columns and fields whatever drove the instance there.
QUICK = """\
id: proposal
version: 1
title: {zh: 提案（统计测试）}
roles:
  member: {zh: 委员}
start:
  roles: [member]
data:
  title: {type: string, required: true}
  first_proposer: {type: string}
  category: {type: enum, values: [economy, politics, culture, society, ecology]}
  proposer_kind: {type: enum, values: [individual, joint, collective], default: individual}
  reply_class: {type: enum, values: [A, B, C]}
  satisfaction: {type: enum, values: [satisfied, basically_satisfied, unsatisfied]}
# its drafts are read (and so moved) by anyone of the org: without read rules no one would
read:
  internal:
    - anyone: true
states:
  draft: {initial: true, label: {zh: 暂存}}
  submitted: {label: {zh: 待立案}}
  filed: {label: {zh: 已立案}}
  closed: {final: true, label: {zh: 已办结}}
transitions:
  - trigger: submit
    from: draft
    to: submitted
    roles: [member]
  - trigger: file
    from: submitted
    to: filed
    roles: [member]
  - trigger: close
    from: filed
    to: closed
    roles: [member]
    payload:
      reply_class: {type: enum, values: [A, B, C]}
      satisfaction: {type: enum, values: [satisfied, basically_satisfied, unsatisfied]}
    set:
      reply_class: payload.reply_class
      satisfaction: payload.satisfaction
"""


def unit(name: str) -> Actor:
    return Actor.of(f"staff-{name}", "handling_unit", org=ORG, unit=name)


def sqlite_engine(path: Path, registry: Registry) -> Engine:
    clock = FixedClock(datetime(2024, 3, 4, 9, tzinfo=CN))
    store = open_store(f"sqlite:///{path}", synchronous="NORMAL")
    counter = iter(range(1, 10**9))
    return Engine(store, registry, clock, ids=lambda: f"i{next(counter):06d}")


def drive_to_closed(engine: Engine, n: int, reply_class: str, satisfaction: str) -> None:
    """A real proposal: filed, assigned to one unit, replied with ``reply_class``, evaluated."""
    pid = engine.start("proposal", {"title": f"提案{n}", "first_proposer": "m1"}, MEMBER).id
    engine.fire(pid, "submit", MEMBER, {"category": ["economy", "society", "ecology"][n % 3]})
    engine.fire(pid, "start_review", STAFF)
    engine.fire(pid, "file", STAFF, {"number": f"{n:04d}"})
    name = ["transport", "housing", "education"][n % 3]
    engine.fire(pid, "assign", OFFICE, {"mode": "sole", "units": [name]})
    cid = engine.children(pid)[0].id
    who = unit(name)
    engine.fire(cid, "acknowledge", who, {"contact_person": "联系人"})
    engine.fire(cid, "contact_proposer", who, {"mode": "face_to_face"})
    engine.fire(
        cid,
        "draft_reply",
        who,
        {"reply_class": reply_class, "reply_text": "答复函", "signer": "局长"},
    )
    engine.fire(cid, "submit_reply", who)
    engine.fire(cid, "approve_reply", OFFICE)
    engine.fire(pid, "evaluate", MEMBER, {"satisfaction": satisfaction})


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Zhenyuan: 118 proposals, 36 A, 52 B, 30 C, all closed; 2 of the 118 unsatisfied."""
    path = tmp_path_factory.mktemp("county") / "county.db"
    engine = sqlite_engine(path, bundled())
    classes = ["A"] * 36 + ["B"] * 52 + ["C"] * 30
    for n, cls in enumerate(classes):
        drive_to_closed(engine, n, cls, "basically_satisfied" if n % 59 else "satisfied")
    assert engine.verify() == []
    engine.store.close()  # type: ignore[attr-defined]
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Zunyi: 445 filed, 109 A, 305 B, 31 with no class stated; plus 5 not yet filed."""
    path = tmp_path_factory.mktemp("city") / "city.db"
    engine = sqlite_engine(path, Registry.from_texts([("quick.yaml", QUICK)]))
    classes: list[str | None] = ["A"] * 109 + ["B"] * 305 + [None] * 31
    for n, cls in enumerate(classes):
        pid = engine.start("proposal", {"title": f"提案{n}", "category": "economy"}, MEMBER).id
        engine.fire(pid, "submit", MEMBER)
        engine.fire(pid, "file", MEMBER)
        engine.fire(pid, "close", MEMBER, {"reply_class": cls} if cls else {})
    for n in range(5):
        pid = engine.start("proposal", {"title": f"待审{n}"}, MEMBER).id
        engine.fire(pid, "submit", MEMBER)
    engine.store.close()  # type: ignore[attr-defined]
    return f"sqlite:///{path}"


def test_rates_round_half_up_to_one_decimal() -> None:
    assert [Rate(n, 118).text for n in (36, 52, 30, 118)] == ["30.5%", "44.1%", "25.4%", "100.0%"]
    assert Rate(391, 441).text == "88.7%" and Rate(1, 0).text == "—"
    assert Rate(108, 110).percent == 98.2


def test_county_figures_come_out_exactly(county: str) -> None:
    """118 closed: classes 36/52/30, closure 100.0%, shares 30.5% / 44.1% / 25.4%."""
    rep = handling_report(county, 2024, ORG)
    f = rep.figures
    assert f["filed"] == 118 and f["closed"] == 118
    assert f["classes"] == {"A": 36, "B": 52, "C": 30, "未分类": 0}
    assert rep.rates["closure_rate"].text == "100.0%"
    assert rep.rates["reply_rate"].text == "100.0%"
    assert [rep.rates[f"class_{c}_share"].text for c in "ABC"] == ["30.5%", "44.1%", "25.4%"]
    assert f["evaluated"] == 118 and f["satisfaction"]["unsatisfied"] == 0
    assert rep.rates["satisfaction_rate"].text == "100.0%"
    assert rep.rates["on_time_rate"].text == "100.0%"
    units = f["units"]
    assert sorted(units) == ["education", "housing", "transport"]
    assert sum(u["replies"] for u in units.values()) == 118
    assert sum(u["classes"]["A"] for u in units.values()) == 36
    assert all(u["late_replies"] == 0 and u["return_requests"] == 0 for u in units.values())
    assert sum(u["evaluated"] for u in units.values()) == 118  # the lead unit carries the grade
    review = review_report(county, 2024, ORG)
    assert review.figures["received"] == 118 and review.figures["filed"] == 118
    assert review.rates["filing_rate"].text == "100.0%"
    assert sum(e["received"] for e in review.figures["by_category"].values()) == 118
    assert review.figures["by_proposer_kind"] == {"individual": {"received": 118, "filed": 118}}


def test_another_year_or_org_is_empty(county: str) -> None:
    assert handling_report(county, 2023, ORG).figures["filed"] == 0
    assert handling_report(county, 2024, "另一个政协").figures["filed"] == 0
    assert handling_report(county, 2024).figures["filed"] == 118


def test_city_reports_unclassified_never_spread(city: str) -> None:
    """445 filed with 109 A and 305 B: 31 are reported as unclassified (decision 4)."""
    rep = handling_report(city, 2024, ORG)
    assert rep.figures["filed"] == 445
    assert rep.figures["classes"] == {"A": 109, "B": 305, "C": 0, "未分类": 31}
    assert rep.rates["adoption_rate"].text == "24.5%"
    assert rep.rates["satisfaction_rate"].text == "—"  # nothing evaluated: no denominator
    review = review_report(city, 2024, ORG)
    assert (review.figures["received"], review.figures["filed"], review.figures["pending"]) == (
        450,
        445,
        5,
    )
    assert review.rates["filing_rate"].text == "98.9%"


def _cli_rows(text: str) -> dict[tuple[str, str], tuple[str, str]]:
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1] == ["分组", "项目", "数量", "比例"]
    return {(r[0], r[1]): (r[2], r[3]) for r in rows[2:]}


def test_every_format_gives_the_same_figures(county: str, tmp_path: Path) -> None:
    """table, json, csv and xlsx from the CLI carry the same numbers."""
    from openpyxl import load_workbook

    runner = CliRunner()
    base = ["report", "handling", "--year", "2024", "--org", ORG, "--db", county]
    table = runner.invoke(app, base)
    assert table.exit_code == 0, table.output
    assert "30.5%" in table.output and "100.0%" in table.output and "未分类" in table.output

    as_json = runner.invoke(app, [*base, "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["figures"]["classes"]["A"] == 36
    assert data["rates"]["class_B_share"]["percent"] == 44.1

    out_csv = tmp_path / "handling.csv"
    assert runner.invoke(app, [*base, "--format", "csv", "-o", str(out_csv)]).exit_code == 0
    raw = out_csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM, for spreadsheet programs
    csv_rows = _cli_rows(raw.decode("utf-8-sig"))

    out_xlsx = tmp_path / "handling.xlsx"
    result = runner.invoke(app, [*base, "--format", "xlsx", "-o", str(out_xlsx)])
    assert result.exit_code == 0, result.output
    ws = load_workbook(out_xlsx).active

    def text(row: tuple[object, ...]) -> list[str]:
        out = ["" if c is None else str(c) for c in row]
        if isinstance(row[3], int | float):  # a rate, stored as a number formatted 0.0%
            out[3] = f"{row[3] * 100:.1f}%"
        return out

    values = [text(row) for row in ws.iter_rows(values_only=True)]
    assert ws["D4"].number_format == "0.0%"
    xlsx_rows = {(r[0], r[1]): (r[2], r[3]) for r in values[2:]}
    book = load_workbook(out_xlsx)
    assert book.sheetnames[1] == "承办单位"
    per_unit = list(book["承办单位"].iter_rows(values_only=True))
    assert per_unit[0][:3] == ("承办单位", "交办", "答复")
    assert sum(int(r[1]) for r in per_unit[1:]) == 118

    expected = report("handling", county, 2024, ORG)
    want = {(r[0], r[1]): (str(r[2]), r[3]) for r in expected.rows()}
    assert csv_rows == want == xlsx_rows
    assert want[("答复类别", "A类（已解决或采纳）")] == ("36", "30.5%")
    assert want[("答复类别", "C类（留作参考）")] == ("30", "25.4%")
    assert want[("总体", "已办结")] == ("118", "100.0%")


def test_unknown_kind_is_refused(county: str) -> None:
    result = CliRunner().invoke(app, ["report", "nonsense", "--year", "2024", "--db", county])
    assert result.exit_code == 2


def test_the_same_figures_on_every_sql_backend(sql_url: str) -> None:
    """The report queries are plain SQLAlchemy Core: SQLite and PostgreSQL give the same."""
    store = open_store(sql_url, synchronous="NORMAL")
    counter = iter(range(1, 10**6))
    engine = Engine(
        store,
        Registry.from_texts([("quick.yaml", QUICK)]),
        FixedClock(datetime(2024, 5, 6, 9, tzinfo=CN)),
        ids=lambda: f"q{next(counter):04d}",
    )
    for n, cls in enumerate(["A", "A", "A", "A", "B", "B", "B", None, None, None]):
        pid = engine.start("proposal", {"title": f"提案{n}", "category": "culture"}, MEMBER).id
        engine.fire(pid, "submit", MEMBER)
        engine.fire(pid, "file", MEMBER)
        payload = {"satisfaction": "satisfied" if n % 2 else "unsatisfied"}
        engine.fire(pid, "close", MEMBER, {**payload, "reply_class": cls} if cls else payload)
    store.close()
    rep = handling_report(sql_url, 2024, ORG)
    assert rep.figures["classes"] == {"A": 4, "B": 3, "C": 0, "未分类": 3}
    assert rep.rates["satisfaction_rate"].text == "50.0%"
    assert rep.rates["closure_rate"].text == "100.0%"
    review = review_report(sql_url, 2024, ORG)
    assert review.figures["by_category"] == {"culture": {"received": 10, "filed": 10}}
