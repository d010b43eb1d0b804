"""Every command's --help renders: the root, every plugin group and every subcommand."""

from __future__ import annotations

from typing import Any

import click
import typer
from typer.testing import CliRunner

from xieshang.adapters.cli import PLUGINS, app


def _paths(group: Any, ctx: Any, prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
    out = [prefix]
    if hasattr(group, "list_commands"):  # typer may carry a click of its own
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if command is not None:
                out += _paths(command, ctx, (*prefix, name))
    return out


def test_every_command_help_renders_and_names_its_usage() -> None:
    """`xieshang ... --help` exits 0 with a usage line for every command of every group,
    plugins included (help texts with brackets, such as `@org[/unit]`, print as written)."""
    root = typer.main.get_command(app)
    with click.Context(root) as ctx:
        paths = _paths(root, ctx, ())
    assert {p[0] for p in paths if p} >= set(PLUGINS)
    assert ("tokens", "create") in paths and ("calendar", "reconcile") in paths
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output, path
    created = runner.invoke(app, ["tokens", "create", "--help"])
    assert "@org[/unit]" in created.output
