"""The command: ``xieshang demo``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from xieshang import XieshangError
from xieshang.adapters.reports import render_table

from .run import run_demo


def register_cli(app: typer.Typer) -> None:
    """Add ``xieshang demo [--db PATH] [--seed N] [--proposals N] [--topics N]``."""

    @app.command("demo")
    def demo_command(
        ctx: typer.Context,
        db: Annotated[
            Path, typer.Option("--db", help="The SQLite file to create (replaced).")
        ] = Path("xieshang-demo.db"),
        seed: Annotated[int, typer.Option("--seed", help="The seed of the simulation.")] = 2024,
        proposals: Annotated[int, typer.Option("--proposals", help="How many proposals.")] = 240,
        topics: Annotated[int, typer.Option("--topics", help="Topics in the annual plan.")] = 51,
        opinions: Annotated[int, typer.Option("--opinions", help="Opinion reports.")] = 26,
        as_json: Annotated[
            bool, typer.Option("--json", help="The reports as JSON, no progress.")
        ] = False,
    ) -> None:
        """Simulate a year of a city 政协 in a fresh SQLite database, then print its reports."""
        from xieshang.adapters.settings import load_calendar

        console = Console()
        path = getattr(ctx.find_root().obj, "calendar", None) or os.environ.get("XIESHANG_CALENDAR")
        try:
            calendar = load_calendar(path)
        except XieshangError as e:
            typer.echo(f"error: {e.message}", err=True)
            raise typer.Exit(1) from None
        result = run_demo(
            db,
            seed=seed,
            proposals=proposals,
            topics=topics,
            opinions=opinions,
            console=console,
            progress=not as_json,
            calendar=calendar,
        )
        if as_json:
            import json

            typer.echo(
                json.dumps(
                    {
                        "reports": {k: r.to_dict() for k, r in result.reports.items()},
                        "transitions": result.transitions,
                        "instances": result.instances,
                        "refusals": result.refusals,
                        "verified": result.verify_problems == [],
                    },
                    ensure_ascii=False,
                    sort_keys=True,
                    indent=2,
                )
            )
            raise typer.Exit(0 if result.verify_problems == [] else 1)
        for rep in result.reports.values():
            console.print(render_table(rep))
        if result.refusals:
            console.print(f"[yellow]{len(result.refusals)} steps refused by the workflows:[/]")
            for line in result.refusals[:10]:
                console.print(f"  {line}")
        if result.verify_problems:
            console.print(f"[red]✗ audit chain: {len(result.verify_problems)} instances broken[/]")
            raise typer.Exit(1)
        console.print(f"[green]✓[/] audit chain verified for {result.instances} instances")
        console.print(
            f"{result.seconds:.1f} s wall time · {result.transitions} transitions · "
            f"{result.db_bytes / 1_000_000:.1f} MB in {result.db}"
        )
