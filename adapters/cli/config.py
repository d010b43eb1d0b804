"""``xieshang config check FILE``: a deployment settings file's problems, or what it sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from xieshang import DeploymentConfig, DeploymentError, Usage
from xieshang.adapters.settings import load_workflows
from xieshang.shared import deploy, workflows_used

from .app import JsonFlag, _state, app
from .output import _emit_json, _err, _out, _reporting

__all__ = ["config_app", "summary"]

config_app = typer.Typer(help="The deployment's settings file (orgs, workflows, params).")
app.add_typer(config_app, name="config")


def summary(config: DeploymentConfig, pins: Any, registry: Any) -> list[dict[str, Any]]:
    """One row per org: its level, parent, the workflows it may start at their versions, and
    the params in force where they differ from the workflows' defaults."""
    deployed = deploy(registry, config, pins)
    rows = []
    for org in config.orgs:
        names = (
            sorted(workflows_used(registry, org.workflows)) if org.workflows is not None else None
        )
        versions = {}
        for workflow in names if names is not None else registry.ids():
            version = deployed.pins.get(org.id, {}).get(workflow)
            versions[workflow] = version if version is not None else "latest"
        params = {w: deployed.config.params_for(org.id, w) for w in registry.ids()}
        rows.append(
            {
                "id": org.id,
                "name": org.name,
                "level": org.level,
                "parent": org.parent,
                "rollup": org.rollup,
                "workflows": versions if names is not None else None,
                "pinned": {w: v for w, v in versions.items() if v != "latest"},
                "params": {w: p for w, p in params.items() if p},
            }
        )
    return rows


@config_app.command("check")
def check(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The deployment settings file (YAML).")],
    as_json: JsonFlag = False,
) -> None:
    """Check a settings file against the workflows: every problem with its line and code
    (exit 1), or a table of its orgs, levels, parents, workflows and params in force."""
    from xieshang.adapters.config import load_config

    with _reporting(as_json):
        if not file.is_file():
            raise Usage(f"{str(file)!r}: no such file", "FILE")
        settings = _state(ctx).settings()
        registry = load_workflows(settings, _state(ctx).dirs())
        try:
            config = load_config(file, registry, settings.pins)
            assert config is not None
            rows = summary(config, settings.pins, registry)
        except DeploymentError as e:
            if as_json:
                body = {"file": str(file), "ok": False}
                _emit_json({**body, "problems": [p.to_dict() for p in e.problems]})
            else:
                for p in e.problems:
                    _err().print(Text(str(p), style="red"), markup=False)
            raise typer.Exit(1) from None
        if as_json:
            _emit_json({"file": str(file), "ok": True, "strict": config.strict, "orgs": rows})
            return
        table = Table("org", "level", "parent", "workflows", "params in force", title=str(file))
        for row in rows:
            wfs = row["workflows"]
            shown = "all (latest)" if wfs is None else ", ".join(f"{w}@{v}" for w, v in wfs.items())
            if wfs is None and row["pinned"]:
                shown += "; " + ", ".join(f"{w}@{v}" for w, v in row["pinned"].items())
            params = "; ".join(
                f"{w}: " + ", ".join(f"{k}={v}" for k, v in p.items())
                for w, p in row["params"].items()
            )
            parent = (row["parent"] or "") + (" (rollup)" if row["rollup"] else "")
            name = f"{row['id']} {row['name']}".strip()
            table.add_row(name, row["level"], parent, shown, params or "defaults")
        _out().print(table)
        if config.strict:
            _out().print(Text("strict: an org not listed here may start nothing"))
