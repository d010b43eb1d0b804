"""``xieshang member`` and ``xieshang duties``: members' duty records and the rules behind them.

``member show ID --year Y`` lists a member's duty records with their source instances, the
points by category (capped) and the quotas not met, read as ``--as`` may read them;
``duties check FILE`` lists every problem of a rules file with its line and code;
``duties schema`` prints the rules file's JSON Schema; ``duties recompute --year Y`` recounts a
year from history under the deployment's rules (``--dry-run`` shows each member's old and new
totals and writes nothing).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from xieshang import Actor, DutiesFileError, InvalidPayload, Usage
from xieshang.adapters.cli import JsonFlag, _emit_json, _err, _out, _reporting, _state
from xieshang.adapters.settings import load_workflows
from xieshang.shared import (
    DutyFile,
    apply_recompute,
    duties_problems,
    member_year,
    recompute_plan,
)

__all__ = ["register_cli"]


def _actor(text: str | None) -> Actor | None:
    if text is None:
        return None
    try:
        return Actor.parse(text)
    except InvalidPayload as e:
        raise Usage(f"--as {text!r}: {e.errors[0]['error']}", "--as") from None


def register_cli(app: typer.Typer) -> None:
    """Add the ``member`` and ``duties`` command groups to the main app."""
    member = typer.Typer(help="A member's duty record (委员履职档案).", no_args_is_help=True)
    duties = typer.Typer(
        help="The members' duty rules: check a file, its schema, recompute a year.",
        no_args_is_help=True,
    )
    app.add_typer(member, name="member")
    app.add_typer(duties, name="duties")

    @member.command("show")
    def show(
        ctx: typer.Context,
        member_id: Annotated[str, typer.Argument(metavar="ID", help="The member's actor id.")],
        year: Annotated[int, typer.Option("--year", help="The year (UTC+8).", min=1900)],
        actor: Annotated[
            str | None,
            typer.Option("--as", help="Read as this actor (id:role[,role...][@org[/unit]])."),
        ] = None,
        as_json: JsonFlag = False,
    ) -> None:
        """A member's duty records of a year, points by category, quotas not met."""
        with _reporting(as_json):
            engine = _state(ctx).engine(reading=True)
            my, rules = member_year(engine, member_id, year, _actor(actor))
            if as_json:
                _emit_json({**my.to_dict(), "rules": rules.hash})
                return
            out = _out()
            spec = rules.file.members.get(member_id)
            name = f" {spec.name}" if spec else ""
            out.print(Text(f"{member_id}{name} · {year}年 履职积分 {my.total}", style="bold"))
            labels = {k: v.label.zh for k, v in rules.file.categories.items()}
            table = Table("日期", "类别", "积分", "规则", "来源实例", "步骤")
            for r in my.records:
                table.add_row(
                    r.occurred_at[:10], labels.get(r.category, r.category), str(r.points),
                    r.rule, r.instance_id, str(r.seq),
                )  # fmt: skip
            out.print(table)
            for cat, points in my.counted.items():
                capped = " (封顶)" if points < my.earned.get(cat, 0) else ""
                out.print(Text(f"{labels.get(cat, cat)}: {points}{capped}"))
            for s in my.shortfalls:
                out.print(
                    Text(
                        f"未完成: {labels.get(s.category, s.category)} {s.have}/{s.need}",
                        style="yellow",
                    )
                )

    @duties.command("check")
    def check(
        ctx: typer.Context,
        file: Annotated[Path, typer.Argument(help="The duty rules file (YAML).")],
        as_json: JsonFlag = False,
    ) -> None:
        """Check a rules file against the workflows: every problem with its line and code."""
        with _reporting(as_json):
            if not file.is_file():
                raise Usage(f"{str(file)!r}: no such file", "FILE")
            registry = load_workflows(_state(ctx).settings(), _state(ctx).dirs())
            problems = duties_problems(file.read_bytes(), str(file), registry)
            if problems:
                if as_json:
                    body = {"file": str(file), "ok": False}
                    _emit_json({**body, "problems": [p.to_dict() for p in problems]})
                else:
                    for p in DutiesFileError(problems, file=str(file)).problems:
                        _err().print(Text(str(p), style="red"), markup=False)
                raise typer.Exit(1)
            if as_json:
                _emit_json({"file": str(file), "ok": True})
            else:
                _out().print(Text(f"✓ {file}", style="green"))

    @duties.command("schema")
    def schema() -> None:
        """The JSON Schema of a rules file, for editors."""
        typer.echo(json.dumps(DutyFile.model_json_schema(), ensure_ascii=False, indent=2))

    @duties.command("recompute")
    def recompute(
        ctx: typer.Context,
        year: Annotated[int, typer.Option("--year", help="The year to recount.", min=1900)],
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Show old and new totals; write nothing.")
        ] = False,
        actor: Annotated[
            str, typer.Option("--as", help="Who runs the recompute (recorded with it).")
        ] = "system",
        as_json: JsonFlag = False,
    ) -> None:
        """Recount a year's duty records from history under the deployment's rules."""
        with _reporting(as_json):
            engine = _state(ctx).engine()
            if engine.duties is None:
                raise Usage("no duty rules are configured", "--duties")
            plan = recompute_plan(engine, engine.duties, year)
            changes = plan.changes()
            body: dict[str, Any] = {
                "year": year,
                "rules": engine.duties.hash,
                "dry_run": dry_run,
                "records_before": len(plan.old),
                "records_after": len(plan.new),
                "members": [{"member": m, "before": a, "after": b} for m, a, b in changes],
            }
            if not dry_run:
                done = apply_recompute(engine, plan, actor)
                body["recompute"] = done.hash
            if as_json:
                _emit_json(body)
                return
            table = Table("委员", "原积分", "新积分", "变化")
            for m, before, after in changes:
                table.add_row(m, str(before), str(after), f"{after - before:+d}")
            out = _out()
            out.print(table)
            verb = "would recount" if dry_run else "recounted"
            out.print(
                Text(
                    f"{verb} {year}: {len(plan.old)} → {len(plan.new)} records under rules "
                    f"{engine.duties.hash[:12]}"
                )
            )
