"""A deployment's settings file: two orgs of one deployment get different return windows, an
instance keeps the params it started with, an org starts only the workflows it uses, and a
broken file is refused before any database is opened."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xieshang import (
    SYSTEM,
    Actor,
    DeploymentError,
    Engine,
    FixedClock,
    Forbidden,
    TransitionNotAllowed,
    load_deployment,
)
from xieshang.adapters.cli import app
from xieshang.adapters.drift import definition_drift
from xieshang.adapters.settings import Settings, build_engine
from xieshang.adapters.sql.store import open_store
from xieshang.shared import CHINA_TZ
from xieshang.workflows import bundled

CONFIG = """\
orgs:
  - id: gd_cppcc
    name: 广东省政协
    level: province
  - id: gz_cppcc
    name: 广州市政协
    level: city
    parent: gd_cppcc
    rollup: true
    workflows: {proposal: latest, opinion_report: latest}
    params:
      proposal_handling: {return_window: 10 working days}
  - id: hz_cppcc
    name: 海珠区政协
    level: district
    parent: gz_cppcc
params:
  proposal_handling: {return_window: 5 working days}
"""
HANDLING = {"title": "加强社区养老服务", "role": "sole"}
runner = CliRunner()


def at(day: str, hour: int = 9) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=CHINA_TZ)


def unit(org: str) -> Actor:
    return Actor.of(f"staff-{org}", "handling_unit", org=org, unit="housing")


def engine_on(url: str, config: str, clock: FixedClock) -> Engine:
    registry = bundled()
    deployment = load_deployment(config, "deployment.yaml", registry)
    return Engine(open_store(url), registry, clock, deployment_config=deployment)


def ask_return(engine: Engine, iid: str, org: str) -> str:
    """The state after the unit asks to be released, or the refusal's name."""
    try:
        return engine.fire(iid, "request_return", unit(org), {}, reason="不属本单位职责").state
    except TransitionNotAllowed:
        return "refused"


def test_two_orgs_of_one_deployment_get_different_return_windows(sql_url: str) -> None:
    """Assigned on Monday 2024-03-04: seven working days later (03-13) the city's unit may still
    ask to be released (10 working days), the province's may not (5); each instance's stored
    definition keeps its window."""
    clock = FixedClock(at("2024-03-04"))
    engine = engine_on(sql_url, CONFIG, clock)
    province = engine.start("proposal_handling", HANDLING, SYSTEM, org="gd_cppcc", unit="housing")
    city = engine.start("proposal_handling", HANDLING, SYSTEM, org="gz_cppcc", unit="housing")
    district = engine.start("proposal_handling", HANDLING, SYSTEM, org="hz_cppcc", unit="housing")
    clock.set(at("2024-03-13"))
    assert ask_return(engine, province.id, "gd_cppcc") == "refused"
    assert ask_return(engine, city.id, "gz_cppcc") == "return_requested"
    assert ask_return(engine, district.id, "hz_cppcc") == "refused"  # no inheritance
    windows = {
        i.org: json.loads(engine.store.load_definition(i.definition_hash) or "{}")["params"][
            "return_window"
        ]["default"]
        for i in (province, city, district)
    }
    assert windows == {
        "gd_cppcc": "5 working days",
        "gz_cppcc": "10 working days",
        "hz_cppcc": "5 working days",
    }
    assert province.definition_hash == district.definition_hash != city.definition_hash
    engine.store.close()


def assisting(engine: Engine, org: str) -> str:
    """An assisting unit's handling, acknowledged and in ``handling`` (its opinion window runs)."""
    data = {"title": "加强社区养老服务", "role": "assisting"}
    iid = engine.start("proposal_handling", data, SYSTEM, org=org, unit="housing").id
    engine.fire(iid, "acknowledge", unit(org), {"contact_person": "联系人"})
    engine.fire(iid, "contact_proposer", unit(org), {"mode": "face_to_face"})
    assert engine.get(iid).state == "handling"
    return iid


def test_an_instance_keeps_the_params_it_started_with_after_the_settings_change(
    sql_url: str,
) -> None:
    """Started under A (return window 10 working days, opinion window 2 months), then the
    engine is built again on B (3 working days, 1 month): the old instance keeps A's windows,
    at a step and at a tick; a new one gets B's."""
    a = CONFIG.replace(
        "{return_window: 10 working days}",
        "{return_window: 10 working days, assist_opinion_window: 2 months}",
    )
    b = CONFIG.replace(
        "{return_window: 10 working days}",
        "{return_window: 3 working days, assist_opinion_window: 1 month}",
    )
    clock = FixedClock(at("2024-03-04"))
    first = engine_on(sql_url, a, clock)
    old_return = first.start("proposal_handling", HANDLING, SYSTEM, org="gz_cppcc", unit="housing")
    old_opinion = assisting(first, "gz_cppcc")
    first.store.close()

    again = engine_on(sql_url, b, clock)
    new_return = again.start("proposal_handling", HANDLING, SYSTEM, org="gz_cppcc", unit="housing")
    new_opinion = assisting(again, "gz_cppcc")
    assert again.get(old_opinion).due_at == at("2024-05-05", 0)  # 2 months, whole last day
    assert again.get(new_opinion).due_at == at("2024-04-05", 0)
    clock.set(at("2024-03-13"))  # 7 working days after the assignment
    assert ask_return(again, old_return.id, "gz_cppcc") == "return_requested"
    assert ask_return(again, new_return.id, "gz_cppcc") == "refused"
    report = again.tick(at("2024-04-20"))
    assert report.fired == 1
    assert (again.get(old_opinion).overdue, again.get(new_opinion).overdue) == (False, True)
    # other params are not another text: no drift is reported for the instances started under A
    assert definition_drift(sql_url, again.registry.versions()) == []
    again.store.close()


def test_an_org_starts_only_the_workflows_it_uses(tmp_path: Path) -> None:
    """The city lists proposal and opinion_report (and so proposal_handling, which proposal
    starts): another workflow is refused naming what it may start; an org the file does not
    list starts anything, unless the file is strict."""
    clock = FixedClock(at("2024-03-04"))
    url = f"sqlite:///{tmp_path / 'orgs.db'}"
    engine = engine_on(url, CONFIG, clock)
    office = Actor.of("o1", "cppcc_office", org="gz_cppcc")
    with pytest.raises(Forbidden) as refused:
        engine.start("meeting_attendance", {}, office)
    assert refused.value.allowed == ["opinion_report", "proposal", "proposal_handling"]
    assert refused.value.actor == refused.value.to_dict()["actor"] == "o1"  # who was refused
    assert str(refused.value) == (
        "org 'gz_cppcc' may not start 'meeting_attendance': it does not use it "
        "(deployment.yaml); it may start: opinion_report, proposal, proposal_handling"
    )
    assert engine.query().items == []
    elsewhere = engine.start("proposal_handling", HANDLING, SYSTEM, org="sz_cppcc", unit="x")
    assert elsewhere.org == "sz_cppcc"
    engine.store.close()
    strict = engine_on(url, CONFIG + "strict: true\n", clock)
    with pytest.raises(Forbidden) as not_listed:
        strict.start("proposal_handling", HANDLING, SYSTEM, org="sz_cppcc", unit="x")
    assert "is not an org of the deployment settings, which are strict" in str(not_listed.value)
    assert not_listed.value.allowed == []
    strict.store.close()


def test_children_follow_the_parents_org(tmp_path: Path) -> None:
    """A proposal of the city assigned to a unit: the handling it starts runs the city's
    return window."""
    clock = FixedClock(at("2024-03-04"))
    engine = engine_on(f"sqlite:///{tmp_path / 'kids.db'}", CONFIG, clock)
    registry = engine.registry
    city = registry.for_start("proposal_handling", "gz_cppcc")
    province = registry.for_start("proposal_handling", "gd_cppcc")
    assert (city.params["return_window"], province.params["return_window"]) == (
        "10 working days",
        "5 working days",
    )
    # spawn resolves the child's definition by the parent's org, through the same call
    assert registry.for_start("proposal_handling", "gz_cppcc", engine.pins) is city
    engine.store.close()


FIXTURES = Path(__file__).parent / "fixtures" / "versions"


def test_a_pin_and_the_file_naming_two_versions_is_refused_before_a_database_opens(
    tmp_path: Path,
) -> None:
    config = tmp_path / "deployment.yaml"
    config.write_text(
        "orgs:\n  - id: gz_cppcc\n    level: city\n    workflows: {suggestion: 2}\n",
        encoding="utf-8",
    )
    db = tmp_path / "pins.db"
    settings = Settings(
        database_url=f"sqlite:///{db}",
        workflows=[FIXTURES],
        config=config,
        pins="gz_cppcc:suggestion=1",
    )
    with pytest.raises(DeploymentError) as bad:
        build_engine(settings)
    assert [(p.code, p.line, p.path) for p in bad.value.problems] == [
        ("XS157", 4, "orgs[0].workflows.suggestion")
    ]
    assert "XIESHANG_PINS pins gz_cppcc:suggestion to version 1, this file to version 2" in str(
        bad.value
    )
    assert not db.exists()
    same = Settings(
        database_url=f"sqlite:///{db}",
        workflows=[FIXTURES],
        config=config,
        pins="gz_cppcc:suggestion=2",
    )
    engine = build_engine(same)
    assert engine.registry.for_start("suggestion", "gz_cppcc").definition.version == 2
    engine.store.close()


def xs(*args: str) -> object:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output
    return result


def test_the_cli_runs_each_org_on_its_own_return_window(
    sql_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--config`` on the command line: a proposal of each org is filed and assigned on Monday
    2024-03-04; on day 7 the city's unit asks to be released, the province's is refused with
    its own window in the message."""
    config = tmp_path / "deployment.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    monkeypatch.delenv("XIESHANG_CONFIG", raising=False)

    def cli(day: str, *args: str) -> tuple[int, str]:
        clock = f"{day}T09:00:00+08:00"
        done = runner.invoke(
            app, ["--config", str(config), "--db", sql_url, "--clock", clock, *args, "--json"]
        )
        assert "Traceback" not in done.output
        return done.exit_code, done.stdout

    answers = {}
    for org in ("gd_cppcc", "gz_cppcc"):
        data = json.dumps({"title": "关于加强社区养老的建议", "first_proposer": "m1"})
        code, out = cli(
            "2024-03-04", "start", "proposal", "--data", data, "--as", f"m1:member@{org}"
        )
        assert code == 0, out
        pid = json.loads(out)["id"]
        committee, office = f"c1:proposal_committee@{org}", f"s1:supervision_office@{org}"
        for trigger, actor, payload in [
            ("submit", f"m1:member@{org}", {"category": "society"}),
            ("start_review", committee, {}),
            ("file", committee, {"number": "2024-001"}),
            ("assign", office, {"mode": "sole", "units": ["民政局"]}),
        ]:
            code, out = cli(
                "2024-03-04",
                "fire",
                pid,
                trigger,
                "--as",
                actor,
                "--payload",
                json.dumps(payload, ensure_ascii=False),
            )
            assert code == 0, out
        code, out = cli("2024-03-04", "list", "--parent", pid)
        (child,) = json.loads(out)["items"]
        answers[org] = cli(
            "2024-03-13",
            "fire",
            child["id"],
            "request_return",
            "--as",
            f"u1:handling_unit@{org}/民政局",
            "--reason",
            "不属本单位职责",
            "--payload",
            "{}",
        )
    assert answers["gz_cppcc"][0] == 0, answers["gz_cppcc"][1]
    assert json.loads(answers["gz_cppcc"][1])["state"] == "return_requested"
    assert answers["gd_cppcc"][0] == 1
    refusal = json.loads(answers["gd_cppcc"][1])["error"]
    assert (refusal["code"], refusal["message"]) == (
        "transition-not-allowed",
        "'request_return' refused in state 'notified': 申退须在交办后5个工作日内提出，截止"
        "2024-03-11 / a return must be asked within 5 working days of assignment, by 2024-03-11",
    )
