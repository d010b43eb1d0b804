"""The commands that change instances beside their workflows' triggers: ``migrate`` (to another
version), ``suspend``, ``resume`` and ``admin set-state``. Each writes audited rows by an
actor with the ``admin`` role; the command line, the trusted operator, acts as
``operator:admin`` unless ``--as`` names another."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from xieshang import Instance, Usage

from .app import JsonFlag, _state
from .output import _actor, _emit_json, _out, _reporting

OPERATOR = "operator:admin"

AdminActor = Annotated[
    str,
    typer.Option(
        "--as",
        help="Who acts (an admin): id:role[,role...][@org[/unit]]; kept in the row.",
    ),
]
Reason = Annotated[str, typer.Option("--reason", help="Why (kept in the row).")]


def pairs(values: list[str], option: str, what: str) -> dict[str, str]:
    """``NAME=VALUE`` options as a mapping.

    Raises:
        Usage: a value without ``=`` or without a name, naming the form expected.
    """
    out: dict[str, str] = {}
    for text in values:
        name, sep, value = text.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise Usage(f"{option} {text!r}: expected {what}", option)
        out[name.strip()] = value.strip()
    return out


def _done(instance: Instance, what: str, as_json: bool) -> None:
    if as_json:
        _emit_json(instance.to_dict())
    else:
        _out().print(Text(f"✓ {instance.id} {what} (version {instance.version})", style="green"))


def register_cli(app: typer.Typer) -> None:
    """Add ``migrate``, ``suspend``, ``resume`` and ``admin set-state``."""

    @app.command("migrate")
    def migrate(
        ctx: typer.Context,
        workflow: Annotated[str, typer.Argument(help="The workflow whose instances move.")],
        to: Annotated[int, typer.Option("--to", help="The version they move to.")],
        org: Annotated[str | None, typer.Option("--org", help="Only this org's.")] = None,
        maps: Annotated[
            list[str] | None,
            typer.Option("--map", help="OLD=NEW: a state renamed in the new version; repeatable."),
        ] = None,
        sets: Annotated[
            list[str] | None,
            typer.Option(
                "--set",
                help="FIELD=CEL: a data field's value, over the old data, instance, now and the "
                "new params (null removes it); repeatable.",
            ),
        ] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Report what would change; write nothing.")
        ] = False,
        reason: Annotated[str | None, typer.Option("--reason", help="Why.")] = None,
        actor: AdminActor = OPERATOR,
        as_json: JsonFlag = False,
    ) -> None:
        """Move the open instances of WORKFLOW to version --to, each by one audited row, whole
        or not at all; report per instance what changes and what cannot. Exits 1 when some
        instance cannot move."""
        with _reporting(as_json):
            state_map = pairs(maps or [], "--map", "OLD=NEW, two state names")
            set_exprs = pairs(sets or [], "--set", "FIELD=CEL")
            report = (
                _state(ctx)
                .engine()
                .migrate(
                    workflow,
                    to,
                    _actor(actor),
                    org=org,
                    state_map=state_map,
                    set_exprs=set_exprs,
                    dry_run=dry_run,
                    reason=reason,
                )
            )
            if as_json:
                _emit_json(report.to_dict())
            else:
                _print_report(report.to_dict())
            if report.refused:
                raise typer.Exit(1)

    @app.command("suspend")
    def suspend(
        ctx: typer.Context,
        instance_id: Annotated[str, typer.Argument(metavar="ID", help="The instance.")],
        reason: Reason,
        actor: AdminActor = OPERATOR,
        as_json: JsonFlag = False,
    ) -> None:
        """Suspend an instance: every command on it is refused and its timers hold until it is
        resumed; its deadline then moves by the time it was held."""
        with _reporting(as_json):
            done = _state(ctx).engine().suspend(instance_id, _actor(actor), reason)
            _done(done, "suspended", as_json)

    @app.command("resume")
    def resume(
        ctx: typer.Context,
        instance_id: Annotated[str, typer.Argument(metavar="ID", help="The instance.")],
        reason: Reason,
        actor: AdminActor = OPERATOR,
        as_json: JsonFlag = False,
    ) -> None:
        """Resume a suspended instance; its deadline and timers move by the time it was held."""
        with _reporting(as_json):
            done = _state(ctx).engine().resume(instance_id, _actor(actor), reason)
            _done(done, "resumed", as_json)

    admin = typer.Typer(help="Repairs by an admin, for what nothing else covers.")
    app.add_typer(admin, name="admin")

    @admin.command("set-state")
    def set_state(
        ctx: typer.Context,
        instance_id: Annotated[str, typer.Argument(metavar="ID", help="The instance.")],
        state: Annotated[str, typer.Argument(help="A state of the definition it runs.")],
        reason: Reason,
        actor: AdminActor = OPERATOR,
        as_json: JsonFlag = False,
    ) -> None:
        """Put an instance in STATE by hand, as if it had just entered it (one audited row)."""
        with _reporting(as_json):
            done = _state(ctx).engine().set_state(instance_id, state, _actor(actor), reason)
            _done(done, f"now in {state}", as_json)


def _print_report(report: dict[str, Any]) -> None:
    out = _out()
    verb = "would move" if report["dry_run"] else "moved"
    for plan in report["instances"]:
        head = f"{plan['instance_id']} {plan['state']}@v{plan['from_version']}"
        if plan["problems"]:
            out.print(Text(f"✗ {head}: cannot move", style="red"))
            for problem in plan["problems"]:
                out.print(Text(f"    {problem}"))
            continue
        sets = ", ".join(f"{k}={v}" for k, v in plan["set"].items())
        tail = f"; data: {sets}" if sets else ""
        out.print(
            Text(
                f"✓ {head} {verb} to {plan['target']}@v{report['to_version']}{tail}",
                style="green",
            )
        )
    moving = sum(not p["problems"] for p in report["instances"])
    out.print(
        Text(
            f"{report['workflow']} → version {report['to_version']}: {moving} {verb}, "
            f"{report['refused']} cannot move"
        )
    )
