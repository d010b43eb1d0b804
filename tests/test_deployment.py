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
