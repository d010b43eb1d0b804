"""The deployment settings file's checks: every mistake reported at its line with its code,
nothing opened or written; ``xieshang config check``; serve and worker read the file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_deployment import CONFIG
from typer.testing import CliRunner

from xieshang import Actor, DeploymentError
from xieshang.adapters.cli import app
from xieshang.adapters.http.commands import app_from_env, token_store_for
from xieshang.adapters.http.testing import serve_in_thread
from xieshang.adapters.settings import Settings, build_engine

runner = CliRunner()

# (line, text on that line, what it becomes, the code it must give at that line)
MUTATIONS = [
    (4, "level: province", "level: provincial", "XS151"),
    (7, "level: city", "level: 市", "XS151"),
    (8, "parent: gd_cppcc", "parent: gd_cpcc", "XS153"),
    (9, "rollup: true", "rollup: maybe", "XS150"),
    (10, "opinion_report: latest", "opinion_reprt: latest", "XS155"),
    (10, "proposal: latest", "proposal: 7", "XS156"),
    (12, "{return_window: 10", "{return_windw: 10", "XS112"),
    (14, "name: 海珠区政协", "nmae: 海珠区政协", "XS150"),
    (16, "parent: gz_cppcc", "parent: hz_cppcc", "XS154"),
    (18, "{return_window: 5 working days}", "{return_window: 5}", "XS116"),
]


def mutate(chosen: list[int]) -> str:
    lines = CONFIG.splitlines()
    for i in chosen:
        line, old, new, _ = MUTATIONS[i]
        assert old in lines[line - 1], (line, lines[line - 1])
        lines[line - 1] = lines[line - 1].replace(old, new)
    return "\n".join(lines) + "\n"


@settings(deadline=None, max_examples=30)
@given(st.sets(st.integers(0, len(MUTATIONS) - 1), min_size=1))
def test_every_mistake_is_reported_at_its_line_and_nothing_is_opened(chosen: set[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "deployment.yaml"
        config.write_text(mutate(sorted(chosen)), encoding="utf-8")
        db = Path(tmp) / "never.db"
        with pytest.raises(DeploymentError) as bad:
            build_engine(Settings(database_url=f"sqlite:///{db}", config=config))
        found = {(p.code, p.line) for p in bad.value.problems}
        assert found == {(MUTATIONS[i][3], MUTATIONS[i][0]) for i in chosen}
        assert all(p.file == str(config) for p in bad.value.problems)
        assert not db.exists()


def test_the_messages_name_what_would_be_allowed() -> None:
    from xieshang import load_deployment
    from xieshang.workflows import bundled

    with pytest.raises(DeploymentError) as bad:
        load_deployment(mutate([1, 2, 6, 8]), "d.yaml", bundled())
    assert [str(p) for p in bad.value.problems] == [
        "d.yaml:7: XS151 orgs[1].level: unknown level '市'; did you mean 'city'? (levels: "
        "national (全国), province (省), city (市), county (县), district (区))",
        "d.yaml:8: XS153 orgs[1].parent: parent 'gd_cpcc' is not an org of this file; did you "
        "mean 'gd_cppcc'? (orgs: gd_cppcc, gz_cppcc, hz_cppcc)",
        "d.yaml:12: XS112 orgs[1].params.proposal_handling.return_windw: proposal_handling v1 "
        "has no param 'return_windw'; did you mean 'return_window'? (params: return_window, "
        "contact_window, assist_opinion_window, score_on_time, score_satisfaction, "
        "score_class_a, score_late_reply, score_late_opinion)",
        "d.yaml:16: XS154 orgs[2].parent: org 'hz_cppcc' is its own ancestor "
        "(hz_cppcc -> hz_cppcc)",
    ]


def test_params_of_a_workflow_the_org_does_not_use_and_a_rollup_without_parent() -> None:
    from xieshang import load_deployment
    from xieshang.workflows import bundled

    text = (
        "orgs:\n"
        "  - id: gd_cppcc\n"
        "    level: province\n"
        "    rollup: true\n"
        "    workflows: [opinion_report]\n"
        "    params:\n"
        "      proposal: {reply_window: 2 months}\n"
    )
    with pytest.raises(DeploymentError) as bad:
        load_deployment(text, "d.yaml", bundled())
    assert [(p.code, p.line) for p in bad.value.problems] == [("XS159", 4), ("XS158", 7)]


def test_config_check_prints_the_problems_or_a_summary(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(CONFIG, encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(mutate([0, 4]), encoding="utf-8")
    refused = runner.invoke(app, ["config", "check", str(bad), "--json"])
    assert refused.exit_code == 1
    body = json.loads(refused.stdout)
    assert [(p["code"], p["line"]) for p in body["problems"]] == [("XS151", 4), ("XS155", 10)]
    done = runner.invoke(app, ["config", "check", str(good), "--json"])
    assert done.exit_code == 0, done.output
    orgs = {o["id"]: o for o in json.loads(done.stdout)["orgs"]}
    assert (orgs["gz_cppcc"]["level"], orgs["gz_cppcc"]["parent"]) == ("city", "gd_cppcc")
    assert orgs["gz_cppcc"]["workflows"] == {
        "opinion_report": "latest",
        "proposal": "latest",
        "proposal_handling": "latest",
    }
    assert orgs["gz_cppcc"]["params"] == {"proposal_handling": {"return_window": "10 working days"}}
    assert orgs["hz_cppcc"]["params"] == {"proposal_handling": {"return_window": "5 working days"}}
    assert orgs["gd_cppcc"]["workflows"] is None
    table = runner.invoke(app, ["config", "check", str(good)], env={"COLUMNS": "300"})
    assert table.exit_code == 0
    assert "gz_cppcc 广州市政协" in table.stdout and "return_window=10 working days" in table.stdout


@pytest.mark.parametrize(
    "command", [["list"], ["worker"], ["tick"], ["serve"], ["report", "review", "--year", "2024"]]
)
def test_a_broken_file_stops_every_command_before_a_database_opens(
    tmp_path: Path, command: list[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(mutate([2]), encoding="utf-8")
    db = tmp_path / "never.db"
    done = runner.invoke(app, ["--config", str(bad), "--db", str(db), *command])
    assert done.exit_code == 1
    assert f"{bad}:8: XS153 orgs[1].parent: parent 'gd_cpcc'" in done.output
    assert not db.exists()


def test_the_served_api_reads_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app factory every server process runs: the city's office may not start a workflow
    the city does not use (403 naming those it may), and starts one it does."""
    config = tmp_path / "deployment.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'served.db'}"
    monkeypatch.setenv("XIESHANG_DATABASE_URL", url)
    monkeypatch.setenv("XIESHANG_CONFIG", str(config))
    api = app_from_env()
    token = token_store_for(url).create(Actor.of("o1", "cppcc_office", org="gz_cppcc"))
    headers = {"Authorization": f"Bearer {token}"}
    with serve_in_thread(api) as base, httpx.Client(base_url=base, headers=headers) as client:
        refused = client.post("/instances", json={"workflow": "meeting_attendance", "data": {}})
        assert refused.status_code == 403
        body = refused.json()
        assert body["allowed"] == ["opinion_report", "proposal", "proposal_handling"]


def test_the_examples_of_the_page_load() -> None:
    """Every settings file shown in docs/deployment.md loads beside the bundled workflows."""
    import re

    from xieshang import load_deployment
    from xieshang.workflows import bundled

    page = (Path(__file__).parent.parent / "docs" / "deployment.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", page, flags=re.S) if "orgs:" in b]
    assert len(blocks) == 2
    loaded = [load_deployment(b, "deployment.md", bundled()) for b in blocks]
    assert [[o.level for o in c.orgs] for c in loaded] == [["province", "city", "district"]] * 2


def test_serve_gives_its_server_processes_every_global_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each server process builds its engine from the environment alone: the global options
    ``serve`` got reach it as ``XIESHANG_*``, and the settings it reads there are those."""
    from xieshang.adapters.cli.app import _State
    from xieshang.adapters.http.commands import server_environment
    from xieshang.adapters.settings import Settings

    flows, more = tmp_path / "flows", tmp_path / "more"
    options = _State(
        workflows=[flows, more],
        clock="2024-03-01T09:00:00+08:00",
        calendar=tmp_path / "calendar.yaml",
        duties=tmp_path / "duties.yaml",
        config=tmp_path / "deployment.yaml",
    )
    env = server_environment(options)
    assert env == {
        "XIESHANG_WORKFLOWS": f"{flows}{os.pathsep}{more}",
        "XIESHANG_CLOCK": "2024-03-01T09:00:00+08:00",
        "XIESHANG_CALENDAR": str(tmp_path / "calendar.yaml"),
        "XIESHANG_DUTIES": str(tmp_path / "duties.yaml"),
        "XIESHANG_CONFIG": str(tmp_path / "deployment.yaml"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    read = Settings()
    assert (read.workflows, read.duties, read.config) == (
        [flows, more],
        tmp_path / "duties.yaml",
        tmp_path / "deployment.yaml",
    )
    assert server_environment(_State()) == {}
