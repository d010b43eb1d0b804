"""The command: ``xieshang report KIND --year Y [--org O] [--format ...] [-o FILE]``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from xieshang import Actor, InvalidPayload
from xieshang.adapters.settings import command_database_url

from .kinds import KINDS, report
from .render import render_table

__all__ = ["register_cli"]


def register_cli(app: typer.Typer) -> None:
    """Add ``xieshang report KIND --year Y [--org O] [--format ...] [-o FILE]``."""

    @app.command("report")
    def report_command(
        ctx: typer.Context,
        kind: Annotated[str, typer.Argument(help=" | ".join(KINDS))],
        year: Annotated[int, typer.Option("--year", help="The year (by creation date, UTC+8).")],
        org: Annotated[str | None, typer.Option("--org", help="Only this organisation.")] = None,
        fmt: Annotated[str, typer.Option("--format", help="table | json | csv | xlsx")] = "table",
        output: Annotated[
            Path | None, typer.Option("-o", "--output", help="Write to this file.")
        ] = None,
        db: Annotated[str | None, typer.Option("--db", help="Database URL or SQLite path.")] = None,
        actor: Annotated[
            str | None,
            typer.Option(
                "--as",
                help="Produce it for this actor (id:role[,role...][@org[/unit]]): without the "
                "rows of instances it may not read.",
            ),
        ] = None,
        rollup: Annotated[
            bool,
            typer.Option(
                "--rollup",
                help="With --org: also the figures of the orgs under it that the deployment "
                "settings (--config) roll up to it, per org and summed.",
            ),
        ] = False,
    ) -> None:
        """The year's figures: proposal review, handling, plan execution, opinion reports, key
        proposals, democratic appraisal, micro and online consultation, members' duties."""
        err = Console(stderr=True)
        if kind not in KINDS:
            err.print(f"unknown report {kind!r}; one of {', '.join(KINDS)}")
            raise typer.Exit(2)
        if fmt not in ("table", "json", "csv", "xlsx"):
            err.print(f"unknown format {fmt!r}; one of table, json, csv, xlsx")
            raise typer.Exit(2)
        who = None
        if actor is not None:
            try:
                who = Actor.parse(actor)
            except InvalidPayload as e:
                err.print(f"--as {actor!r}: {e.errors[0]['error']}", markup=False)
                raise typer.Exit(2) from None
        url = command_database_url(ctx, db)
        if rollup:
            _rolled_up(ctx, kind, url, year, org, who, fmt, output)
            return
        rep = report(kind, url, year, org, actor=who)
        if fmt == "xlsx":
            if output is None:
                err.print("--format xlsx needs -o FILE")
                raise typer.Exit(2)
            rep.write_xlsx(output)
            return
        if fmt == "csv":
            if output is not None:
                rep.write_csv(output)
            else:
                typer.echo(rep.to_csv(), nl=False)
            return
        if fmt == "json":
            if output is not None:
                output.write_text(rep.to_json() + "\n", encoding="utf-8")
            else:
                typer.echo(rep.to_json())
            return
        console = Console(record=output is not None)
        console.print(render_table(rep))
        if output is not None:
            output.write_text(console.export_text(), encoding="utf-8")


def _rolled_up(
    ctx: typer.Context,
    kind: str,
    url: str,
    year: int,
    org: str | None,
    who: Actor | None,
    fmt: str,
    output: Path | None,
) -> None:
    from xieshang.adapters.config import load_config
    from xieshang.adapters.settings import load_workflows

    from .rollup import rollup_report

    err = Console(stderr=True)
    state = ctx.find_root().obj
    settings = state.settings()
    if org is None or settings.config is None:
        err.print("--rollup needs --org and the deployment settings (--config or XIESHANG_CONFIG)")
        raise typer.Exit(2)
    config = load_config(settings.config, load_workflows(settings, state.dirs()), settings.pins)
    assert config is not None
    rolled = rollup_report(kind, url, year, org, config, who)
    if fmt == "json":
        text = rolled.to_json()
        if output is not None:
            output.write_text(text + "\n", encoding="utf-8")
        else:
            typer.echo(text)
        return
    if fmt in ("csv", "xlsx"):  # the sum, its notes naming the orgs in it and those left out
        if output is None and fmt == "csv":
            typer.echo(rolled.total.to_csv(), nl=False)
        elif output is None:
            err.print("--format xlsx needs -o FILE")
            raise typer.Exit(2)
        else:
            (rolled.total.write_csv if fmt == "csv" else rolled.total.write_xlsx)(output)
        return
    console = Console(record=output is not None)
    console.print(render_table(rolled.total))
    for name, rep in rolled.per_org.items():
        console.print(f"\n{name}")
        console.print(render_table(rep))
    if output is not None:
        output.write_text(console.export_text(), encoding="utf-8")
