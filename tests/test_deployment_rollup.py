"""Rolled-up reports: a province's figures with its cities' that roll up to it, per org and
summed exactly; an org without ``rollup: true`` is left out, and the output says so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_deployment import CONFIG, at
from typer.testing import CliRunner

from xieshang import Actor, Engine, FixedClock, Forbidden, load_deployment
from xieshang.adapters.cli import app
from xieshang.adapters.reports.model import Rate
from xieshang.adapters.reports.rollup import NOT_SET, rollup_report
from xieshang.adapters.sql.store import open_store
from xieshang.workflows import bundled

runner = CliRunner()
# proposals received by each org in 2024, and how many of them are filed
PLAN = {"gd_cppcc": (1, 1), "gz_cppcc": (3, 2), "hz_cppcc": (2, 1)}


def propose(engine: Engine, org: str, received: int, filed: int) -> None:
    member = Actor.of("m1", "member", org=org)
    committee = Actor.of("c1", "proposal_committee", org=org)
    for n in range(received):
        data = {"title": f"{org} 第{n + 1}件", "first_proposer": "m1"}
        pid = engine.start("proposal", data, member).id
        engine.fire(pid, "submit", member, {"category": "society"})
        if n < filed:
            engine.fire(pid, "start_review", committee, {})
            engine.fire(pid, "file", committee, {"number": f"2024-{n + 1:03d}"})


@pytest.fixture
def filled(sql_url: str) -> str:
    clock = FixedClock(at("2024-03-04"))
    registry = bundled()
    engine = Engine(
        open_store(sql_url),
        registry,
        clock,
        deployment_config=load_deployment(CONFIG, "d.yaml", registry),
    )
    for org, (received, filed) in PLAN.items():
        propose(engine, org, received, filed)
    engine.store.close()
    return sql_url


def leaves(value: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if isinstance(value, dict):
        return {k: v for key, sub in value.items() for k, v in leaves(sub, (*path, key)).items()}
    return {path: value}


def test_a_rollup_sums_the_cities_that_roll_up_and_names_those_left_out(filled: str) -> None:
    config = load_deployment(CONFIG, "d.yaml", bundled())
    office = Actor.of("o1", "cppcc_office", org="gd_cppcc")
    rolled = rollup_report("review", filled, 2024, "gd_cppcc", config, office)
    assert list(rolled.per_org) == ["gd_cppcc", "gz_cppcc"]
    assert rolled.left_out == {"hz_cppcc": NOT_SET}
    gd, gz = rolled.per_org["gd_cppcc"].figures, rolled.per_org["gz_cppcc"].figures
    assert (gd["received"], gz["received"], rolled.total.figures["received"]) == (1, 3, 4)
    assert (gd["filed"], gz["filed"], rolled.total.figures["filed"]) == (1, 2, 3)
    assert rolled.total.figures["pending"] == 1
    both = leaves(gd), leaves(gz)
    for path, value in leaves(rolled.total.figures).items():
        if isinstance(value, int):
            assert value == both[0].get(path, 0) + both[1].get(path, 0), path
    for name, rate in rolled.total.rates.items():
        parts = [r.rates[name] for r in rolled.per_org.values()]
        assert rate == Rate(sum(p.numerator for p in parts), sum(p.denominator for p in parts))
    assert "未汇总 (left out): hz_cppcc: " + NOT_SET in rolled.total.notes

    district = CONFIG.replace("    parent: gz_cppcc\n", "    parent: gz_cppcc\n    rollup: true\n")
    deep = rollup_report(
        "review", filled, 2024, "gd_cppcc", load_deployment(district, "d.yaml", bundled()), office
    )
    assert list(deep.per_org) == ["gd_cppcc", "gz_cppcc", "hz_cppcc"]
    assert (deep.total.figures["received"], deep.total.figures["filed"], deep.left_out) == (
        6,
        4,
        {},
    )


def test_only_the_parents_reporting_roles_read_its_rollup(filled: str) -> None:
    config = load_deployment(CONFIG, "d.yaml", bundled())
    with pytest.raises(Forbidden) as other_org:
        rollup_report(
            "review",
            filled,
            2024,
            "gd_cppcc",
            config,
            Actor.of("o2", "cppcc_office", org="gz_cppcc"),
        )
    assert other_org.value.allowed == ["gz_cppcc"]
    with pytest.raises(Forbidden) as member:
        rollup_report(
            "review", filled, 2024, "gd_cppcc", config, Actor.of("m1", "member", org="gd_cppcc")
        )
    assert member.value.allowed == ["cppcc_office", "admin"]


def test_the_report_command_rolls_up(filled: str, tmp_path: Path) -> None:
    config = tmp_path / "deployment.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    done = runner.invoke(
        app,
        [
            "--config",
            str(config),
            "--db",
            filled,
            "report",
            "review",
            "--year",
            "2024",
            "--org",
            "gd_cppcc",
            "--rollup",
            "--as",
            "o1:cppcc_office@gd_cppcc",
            "--format",
            "json",
        ],
    )
    assert done.exit_code == 0, done.output
    body = json.loads(done.stdout)
    assert body["rollup"] == {"orgs": ["gd_cppcc", "gz_cppcc"], "left_out": {"hz_cppcc": NOT_SET}}
    assert body["total"]["figures"]["received"] == 4
    assert {o: r["figures"]["received"] for o, r in body["per_org"].items()} == {
        "gd_cppcc": 1,
        "gz_cppcc": 3,
    }
    refused = runner.invoke(
        app,
        [
            "--config",
            str(config),
            "--db",
            filled,
            "report",
            "review",
            "--year",
            "2024",
            "--org",
            "gd_cppcc",
            "--rollup",
            "--as",
            "m1:member@gd_cppcc",
        ],
    )
    assert refused.exit_code == 1
    assert "allowed roles: cppcc_office, admin" in refused.output
