"""A migration under deployment settings: each org's instances move to the new version with
that org's own params, and verify passes (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime

from xieshang import Actor, Engine, FixedClock, Registry, load_deployment
from xieshang.adapters.sql import open_store
from xieshang.shared import CHINA_TZ

NOTE = """\
id: note
version: {version}
title: {{zh: 便笺, en: A note}}
roles:
  office: {{zh: 办公室}}
params:
  review_window: {{type: duration, default: 5 days, label: {{zh: 审阅期限}}}}
data:
  title: {{type: string, required: true}}
states:
  {open}: {{initial: true, label: {{zh: 待审}}, deadline: {{after: params.review_window}}}}
  done: {{final: true, label: {{zh: 已办}}}}
transitions:
  - trigger: finish
    from: {open}
    to: done
    roles: [office]
"""
CONFIG = """\
orgs:
  - id: city
    level: city
    params:
      note: {review_window: 20 days}
  - id: county
    level: county
    parent: city
params:
  note: {review_window: 10 days}
"""


def registry() -> Registry:
    return Registry.from_texts(
        [
            ("note_v1.yaml", NOTE.format(version=1, open="open")),
            ("note_v2.yaml", NOTE.format(version=2, open="waiting")),
        ]
    )


def test_each_orgs_instances_move_with_that_orgs_params(sql_url: str, clock: FixedClock) -> None:
    """v1 instances of two orgs are migrated to v2 (a renamed state): the city's instance moves
    to a v2 compiled with its 20 days, the county's to the deployment-wide 10 days; each
    deadline is recounted from the state's entry on its own window, and verify passes."""
    reg = registry()
    config = load_deployment(CONFIG, "deployment.yaml", reg)
    admin = Actor.of("a1", "admin")
    with open_store(sql_url) as store:
        engine = Engine(
            store,
            reg,
            clock,
            deployment_config=config,
            pins={"city": {"note": 1}, "county": {"note": 1}},
        )
        made = {
            org: engine.start("note", {"title": f"{org} 便笺"}, Actor.of("o", "office", org=org))
            for org in ("city", "county")
        }
        # started 2024-03-01 17:00 in Beijing: due at the end of the 20th or the 10th day
        due = {"city": at("2024-03-22"), "county": at("2024-03-12")}
        assert {org: i.due_at for org, i in made.items()} == due
        moved = Engine(store, reg, clock, deployment_config=config)
        report = moved.migrate("note", to_version=2, actor=admin, state_map={"open": "waiting"})
        assert sorted(p.org for p in report.plans if p.migrated) == ["city", "county"]
        after = {org: moved.get(i.id) for org, i in made.items()}
        for org, inst in after.items():
            assert (inst.state, inst.workflow_version) == ("waiting", 2)
            assert inst.definition_hash == reg_hash(moved, "note", 2, org)
            assert inst.due_at == due[org]  # recounted on the org's own window
        assert after["city"].definition_hash != after["county"].definition_hash
        assert moved.verify() == []


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=CHINA_TZ)


def reg_hash(engine: Engine, workflow: str, version: int, org: str) -> str:
    return engine.registry.for_version(workflow, version, org).hash
