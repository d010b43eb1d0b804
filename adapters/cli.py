"""The ``xieshang`` command line: check and draw workflow files, run and audit instances.

Exit codes: 0 done; 1 the engine refused or found a problem (a typed :class:`XieshangError`,
an invalid workflow file, a broken history); 2 the command line itself is wrong (bad JSON,
a malformed actor, a missing file, a missing graphviz binary). With ``--json`` the result, or
``{"error": {...}}``, is written to stdout as JSON; messages for people go to stderr.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Column, Table
from rich.text import Text
from typer.core import TyperGroup

from xieshang import (
    Actor,
    Definition,
    DefinitionError,
    Engine,
    HistoryEntry,
    Instance,
    InvalidPayload,
    NotFound,
    Query,
    Registry,
    SettingsError,
    Usage,
    XieshangError,
    load_definition,
)
from xieshang.adapters.common import DiagramFormat, draw, parse_cursor
from xieshang.adapters.settings import (
    Settings,
    build_engine,
    load_calendar,
    load_workflows,
    workflow_paths,
)
from xieshang.shared import CHINA_TZ, provisional_years, read_yaml
from xieshang.workflows import BUNDLED_DIR

__all__ = ["app", "main"]

DOT_TIMEOUT_SECONDS = 120

# Commands other adapters contribute through their ``register_cli(app)``, by the module that
# has them. They are added on first use: importing the web stack costs about a second, which
# `validate` or `show` should not pay.
PLUGINS = {
    "serve": "xieshang.adapters.http",
    "tokens": "xieshang.adapters.http",
    "relay": "xieshang.adapters.events",
    "events": "xieshang.adapters.events",
    "report": "xieshang.adapters.reports",
    "demo": "xieshang.adapters.demo",
    "calendar": "xieshang.adapters.calendar_cli",
}


class _Group(TyperGroup):
    """The root command group, with the commands of :data:`PLUGINS` loaded when first named."""

    # ctx and the command are Any: recent typer vendors its own click, older typer uses click's

    def list_commands(self, ctx: Any) -> list[str]:
        own = super().list_commands(ctx)
        return [*own, *(name for name in PLUGINS if name not in own)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in PLUGINS and cmd_name not in self.commands:
            register = importlib.import_module(PLUGINS[cmd_name]).register_cli
            extra = typer.Typer(rich_markup_mode=None)
            register(extra)
            for name, command in typer.main.get_group(extra).commands.items():
                self.commands.setdefault(name, command)
        return super().get_command(ctx, cmd_name)


app = typer.Typer(
    name="xieshang",
    cls=_Group,
    help="xieshang (协商): check, draw, run and audit consultation workflows.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_show_locals=False,
)
audit_app = typer.Typer(help="Check that stored histories are intact.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
AsActor = Annotated[
    str,
    typer.Option("--as", help="The actor: id:role[,role...][@org[/unit]], or a JSON object."),
]
ReadAs = Annotated[
    str | None,
    typer.Option(
        "--as",
        help="Read as this actor (id:role[,role...][@org[/unit]]): only what the workflow's "
        "read: rules let it see. Without it, everything (the trusted operator).",
    ),
]


@dataclass
class _State:
    """The global options, and the engine built from them on first use."""

    db: str | None = None
    workflows: list[Path] = field(default_factory=list)
    clock: str | None = None
    calendar: Path | None = None
    _settings: Settings | None = None
    _engine: Engine | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            overrides: dict[str, Any] = {}
            if self.db is not None:
                overrides["database_url"] = self.db
            if self.clock is not None:
                overrides["clock"] = self.clock
            if self.calendar is not None:
                overrides["calendar"] = self.calendar
            try:
                self._settings = Settings(**overrides)
            except SettingsError as e:
                raise Usage("; ".join(_setting_error(err) for err in e.errors)) from None
        return self._settings

    def dirs(self) -> list[Path]:
        for d in self.workflows:
            if not d.exists():
                raise Usage(f"--workflows {str(d)!r}: no such file or directory", "--workflows")
        return self.workflows

    def registry(self) -> Registry:
        return load_workflows(self.settings(), self.dirs())

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = build_engine(self.settings(), workflows_dirs=self.dirs())
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            close = getattr(self._engine.store, "close", None)
            if callable(close):
                close()
            self._engine = None


def _setting_error(err: dict[str, Any]) -> str:
    name = str(err["field"]).partition(".")[0] or "settings"
    option = {
        "database_url": "--db",
        "clock": "--clock",
        "workflows": "--workflows",
        "calendar": "--calendar",
    }.get(name)
    where = f"{option} / XIESHANG_{name.upper()}" if option else f"XIESHANG_{name.upper()}"
    message = str(err["error"]).removeprefix("Value error, ")
    got = f" (got {err['got']})" if "got" in err else ""
    return f"{where}: {message}{got}"


@app.callback()
def _global(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option("--db", help="Database URL (env XIESHANG_DATABASE_URL).", show_default=False),
    ] = None,
    workflows: Annotated[
        list[Path] | None,
        typer.Option(
            "--workflows",
            help="A directory (or file) of workflow YAML; repeatable (env XIESHANG_WORKFLOWS).",
        ),
    ] = None,
    clock: Annotated[
        str | None,
        typer.Option("--clock", help="Simulated time, ISO with timezone (env XIESHANG_CLOCK)."),
    ] = None,
    calendar: Annotated[
        Path | None,
        typer.Option(
            "--calendar",
            help="The deployment's holiday file, YAML by year (env XIESHANG_CALENDAR).",
            show_default=False,
        ),
    ] = None,
) -> None:
    state = _State(db=db, workflows=list(workflows or []), clock=clock, calendar=calendar)
    ctx.obj = state
    ctx.call_on_close(state.close)


def _state(ctx: typer.Context) -> _State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, _State) else _State()


# -- output ----------------------------------------------------------------------------------


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _emit_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2))


def _fail(message: str, details: dict[str, Any], code: int, as_json: bool) -> NoReturn:
    _err().print(Text(f"error: {message}", style="red"))
    if as_json:
        _emit_json({"error": details})
    raise typer.Exit(code)


@contextmanager
def _reporting(as_json: bool) -> Iterator[None]:
    """Turns our errors and bad input into a message and an exit code, never a traceback."""
    try:
        yield
    except Usage as e:
        _fail(e.message, e.to_dict(), 2, as_json)
    except XieshangError as e:
        _fail(e.message, e.to_dict(), 1, as_json)


def _json_object(text: str | None, option: str) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise Usage(
            f"{option} is not valid JSON: {e.msg} at column {e.colno} (got {text!r})", option
        ) from None
    if not isinstance(value, dict):
        raise Usage(f"{option} must be a JSON object, got {type(value).__name__} {text!r}", option)
    return value


def _actor(text: str) -> Actor:
    try:
        return Actor.parse(text)
    except InvalidPayload as e:
        detail = "; ".join(str(err.get("error")) for err in e.errors)
        raise Usage(f"--as {text!r} is not an actor: {detail}", "--as", errors=e.errors) from None


def _moment(value: datetime | str | None) -> str:
    if value is None:
        return "-"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")


def _definition(engine: Engine, instance: Instance) -> Definition | None:
    wf = engine.registry.by_hash(instance.definition_hash)
    if wf is not None:
        return wf.definition
    body = engine.store.load_definition(instance.definition_hash)
    if body is not None:
        return Definition.model_validate(json.loads(body))
    try:
        return engine.registry.get(instance.workflow).definition
    except NotFound:
        return None


def _state_label(d: Definition | None, state: str | None) -> str:
    if state is None:
        return "-"
    spec = d.states.get(state) if d is not None else None
    return f"{spec.label.zh} ({state})" if spec is not None else state


def _trigger_label(d: Definition | None, trigger: str) -> str:
    if d is not None:
        for t in d.transitions:
            if t.trigger == trigger and t.label is not None:
                return f"{t.label.zh} ({trigger})"
    return "创建 (start)" if trigger == "start" else trigger


def _show_instance(engine: Engine, instance: Instance) -> None:
    d = _definition(engine, instance)
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    due = _moment(instance.due_at) + (" 已逾期 (overdue)" if instance.overdue else "")
    provisional = provisional_years(instance.due_basis)
    if provisional:
        years = ", ".join(map(str, provisional))
        due += f" 暂定 (provisional: {years} has no official holiday schedule yet)"
    for key, value in (
        ("编号 id", instance.id),
        ("状态 state", _state_label(d, instance.state) + (" · 已结束" if instance.final else "")),
        ("版本 version", str(instance.version)),
        ("组织 org", instance.org or "-"),
        ("创建 created", _moment(instance.created_at)),
        ("更新 updated", _moment(instance.updated_at)),
        ("期限 due", due),
        *((("上级 parent", instance.parent_id),) if instance.parent_id else ()),
        *((("单位 unit", instance.unit),) if instance.unit else ()),
    ):
        facts.add_row(key, Text(value))
    data = Table("字段 field", "值 value", expand=False)
    for name, value in instance.data.items():
        spec = d.data.get(name) if d is not None else None
        label = f"{spec.label.zh} ({name})" if spec is not None and spec.label else name
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        data.add_row(Text(label), Text(shown))
    title = f"{d.title.zh} ({instance.workflow})" if d is not None else instance.workflow
    out = _out()
    out.print(Panel(facts, title=Text(title), title_align="left"))
    if instance.data:
        out.print(data)


# -- workflow files ----------------------------------------------------------------------------


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


def _yaml_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted([*p.glob("*.yaml"), *p.glob("*.yml")])
            if not found:
                raise Usage(f"{str(p)!r} holds no *.yaml or *.yml file")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise Usage(f"{str(p)!r}: no such file or directory")
    return files


@app.command()
def validate(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Workflow files or directories of them.")],
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="text, or json for machines.")
    ] = OutputFormat.text,
    as_json: JsonFlag = False,
) -> None:
    """Check workflow files together (with the bundled ones known); list every problem."""
    as_json = as_json or output_format is OutputFormat.json
    with _reporting(as_json):
        targets = _yaml_files(paths)
        mine = {f.resolve() for f in targets}
        # a file being validated replaces the bundled workflow of the same id (an edited copy)
        replaced = {_declared_id(f) for f in targets}
        context = [
            f
            for f in workflow_paths(_state(ctx).settings(), _state(ctx).dirs())
            if f.resolve() not in mine
            and not (f.parent.resolve() == BUNDLED_DIR.resolve() and f.stem in replaced)
        ]
        problems = []
        try:
            Registry.from_texts((str(f), f.read_bytes()) for f in [*context, *targets])
        except DefinitionError as e:
            problems = e.problems
        if as_json:
            _emit_json(
                {
                    "valid": not problems,
                    "files": [str(f) for f in targets],
                    "problems": [p.to_dict() for p in problems],
                }
            )
        else:
            out = _out()
            bad = {p.file for p in problems}
            for f in targets:
                if str(f) not in bad:
                    out.print(Text(f"✓ {f}", style="green"))
            for p in problems:
                out.print(Text(str(p)), markup=False)
            if problems:
                files = len(bad)
                _err().print(
                    Text(
                        f"{len(problems)} problem{'s' * (len(problems) != 1)} in "
                        f"{files} file{'s' * (files != 1)}",
                        style="red",
                    )
                )
        if problems:
            raise typer.Exit(1)


def _declared_id(path: Path) -> str | None:
    located, _ = read_yaml(path.read_bytes(), str(path))
    data = located.data if located is not None else None
    return data.get("id") if isinstance(data, dict) and isinstance(data.get("id"), str) else None


@app.command()
def schema(as_json: JsonFlag = False) -> None:
    """Print the JSON Schema of a workflow file (for editors)."""
    from xieshang.shared import schema_json

    del as_json  # the output is JSON either way
    _emit_json(schema_json())


def _definition_of(ctx: typer.Context, target: str) -> Definition:
    path = Path(target)
    if path.is_file():
        return load_definition(path.read_bytes(), str(path)).definition
    if path.suffix in {".yaml", ".yml"} or os.sep in target:
        raise Usage(f"{target!r}: no such file")
    return _state(ctx).registry().get(target).definition


@app.command()
def diagram(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="A workflow file, or the id of a loaded workflow.")],
    diagram_format: Annotated[
        DiagramFormat, typer.Option("--format", help="mermaid, dot, or svg (needs graphviz).")
    ] = DiagramFormat.mermaid,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write here.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Draw a workflow as Mermaid, Graphviz dot, or SVG."""
    with _reporting(as_json):
        definition = _definition_of(ctx, target)
        body = draw(definition, diagram_format, timeout=DOT_TIMEOUT_SECONDS)
        if output is not None:
            try:
                output.write_bytes(body)
            except OSError as e:
                raise Usage(f"-o {str(output)!r}: {e.strerror}", "-o") from None
        if as_json:
            result: dict[str, Any] = {"workflow": definition.id, "format": diagram_format.value}
            if output is not None:
                result["output"] = str(output)
            else:
                result["text"] = body.decode()
            _emit_json(result)
        elif output is None:
            typer.echo(body.decode(), nl=not body.endswith(b"\n"))
        else:
            _err().print(Text(f"✓ wrote {output}", style="green"))


# -- instances --------------------------------------------------------------------------------


@app.command()
def start(
    ctx: typer.Context,
    workflow: Annotated[str, typer.Argument(help="The workflow id, e.g. proposal.")],
    actor: AsActor,
    data: Annotated[
        str | None, typer.Option("--data", help="Instance data, a JSON object.")
    ] = None,
    org: Annotated[
        str | None, typer.Option("--org", help="The org (default: the actor's).")
    ] = None,
    command_id: Annotated[
        str | None, typer.Option("--command-id", help="Idempotency key: a retry does nothing.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Start an instance of a workflow."""
    with _reporting(as_json):
        values = _json_object(data, "--data")
        who = _actor(actor)
        engine = _state(ctx).engine()
        instance = engine.start(workflow, values, who, org=org, command_id=command_id)
        if as_json:
            _emit_json(instance.to_dict())
            return
        d = _definition(engine, instance)
        _err().print(
            Text(f"✓ started {instance.id} in {_state_label(d, instance.state)}", style="green")
        )
        _show_instance(engine, instance)


@app.command()
def fire(
    ctx: typer.Context,
    instance_id: Annotated[str, typer.Argument(metavar="ID", help="The instance id.")],
    trigger: Annotated[str, typer.Argument(help="The trigger, e.g. submit.")],
    actor: AsActor,
    payload: Annotated[
        str | None, typer.Option("--payload", help="The payload, a JSON object.")
    ] = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (some steps need it).")
    ] = None,
    expected_version: Annotated[
        int | None, typer.Option("--expected-version", help="Refuse unless at this version.")
    ] = None,
    command_id: Annotated[
        str | None, typer.Option("--command-id", help="Idempotency key: a retry does nothing.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Fire a trigger on an instance."""
    with _reporting(as_json):
        values = _json_object(payload, "--payload")
        who = _actor(actor)
        engine = _state(ctx).engine()
        instance = engine.fire(
            instance_id,
            trigger,
            who,
            values,
            reason=reason,
            expected_version=expected_version,
            command_id=command_id,
        )
        if as_json:
            _emit_json(instance.to_dict())
            return
        d = _definition(engine, instance)
        _err().print(
            Text(
                f"✓ {_trigger_label(d, trigger)} → {_state_label(d, instance.state)}", style="green"
            )
        )
        _show_instance(engine, instance)


@app.command()
def show(
    ctx: typer.Context,
    instance_id: Annotated[str, typer.Argument(metavar="ID", help="The instance id.")],
    actor: ReadAs = None,
    as_json: JsonFlag = False,
) -> None:
    """Show an instance: its state, version, deadline and data."""
    with _reporting(as_json):
        who = _actor(actor) if actor is not None else None
        engine = _state(ctx).engine()
        instance = engine.get(instance_id, who)
        if as_json:
            _emit_json(instance.to_dict())
        else:
            _show_instance(engine, instance)


def _history_table(engine: Engine, instance: Instance, rows: list[HistoryEntry]) -> Table:
    d = _definition(engine, instance)
    table = Table(
        "#",
        "时间 when",
        "操作 trigger",
        "状态 state",
        "操作人 actor",
        "角色 role",
        "理由 reason",
        title=Text(f"{instance.id} 的历史 history"),
    )
    for row in rows:
        move = _state_label(d, row.target)
        if row.source is not None and row.source != row.target:
            move = f"{_state_label(d, row.source)} → {move}"
        table.add_row(
            str(row.seq),
            _moment(row.occurred_at),
            Text(_trigger_label(d, row.trigger)),
            Text(move),
            Text(str(row.actor.get("id"))),
            Text(row.role),
            Text(row.reason or ""),
        )
    return table


@app.command()
def history(
    ctx: typer.Context,
    instance_id: Annotated[str, typer.Argument(metavar="ID", help="The instance id.")],
    actor: ReadAs = None,
    as_json: JsonFlag = False,
) -> None:
    """List an instance's history, oldest first (its creation is the first row)."""
    with _reporting(as_json):
        who = _actor(actor) if actor is not None else None
        engine = _state(ctx).engine()
        instance = engine.get(instance_id, who)
        rows = engine.history(instance_id, who)
        if as_json:
            _emit_json([row.to_dict() for row in rows])
        else:
            _out().print(_history_table(engine, instance, rows))


@app.command()
def available(
    ctx: typer.Context,
    instance_id: Annotated[str, typer.Argument(metavar="ID", help="The instance id.")],
    actor: AsActor,
    as_json: JsonFlag = False,
) -> None:
    """What an actor may do now: every trigger from the current state, and why not."""
    with _reporting(as_json):
        who = _actor(actor)
        engine = _state(ctx).engine()
        choices = engine.available(instance_id, who)
        if as_json:
            _emit_json([c.to_dict() for c in choices])
            return
        instance = engine.get(instance_id, who)
        d = _definition(engine, instance)
        table = Table(
            "操作 trigger",
            "到 to",
            "可以 allowed",
            "原因 why not",
            title=Text(f"{who.id} 在 {_state_label(d, instance.state)}"),
        )
        for c in choices:
            table.add_row(
                Text(_trigger_label(d, c.trigger)),
                Text(_state_label(d, c.target)),
                Text("✓" if c.allowed else "✗", style="green" if c.allowed else "red"),
                Text(c.reason or ""),
            )
        _out().print(table)


@app.command("list")
def list_instances(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option("--state", help="Only in this state.")] = None,
    workflow: Annotated[str | None, typer.Option("--workflow", help="Only this workflow.")] = None,
    org: Annotated[str | None, typer.Option("--org", help="Only this org.")] = None,
    parent: Annotated[
        str | None, typer.Option("--parent", help="Only the children of this instance.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Page size.")] = 50,
    cursor: Annotated[
        str | None, typer.Option("--cursor", help="Where the previous page ended.")
    ] = None,
    actor: ReadAs = None,
    as_json: JsonFlag = False,
) -> None:
    """List instances, oldest first, one page at a time."""
    with _reporting(as_json):
        after = parse_cursor(cursor, "--cursor")
        who = _actor(actor) if actor is not None else None
        engine = _state(ctx).engine()
        page = engine.query(
            Query(
                workflow=workflow, state=state, org=org, parent_id=parent, limit=limit, after=after
            ),
            actor=who,
        )
        if as_json:
            _emit_json(
                {"items": [i.to_dict() for i in page.items], "next_cursor": page.next_cursor}
            )
            return
        # ids are what the next command needs: never cut short
        id_width = max((len(i.id) for i in page.items), default=2)
        table = Table(
            Column("编号 id", min_width=id_width),
            "流程 workflow",
            "状态 state",
            "版本",
            "组织 org",
            "更新 updated",
            "期限 due",
        )
        for i in page.items:
            d = _definition(engine, i)
            table.add_row(
                Text(i.id),
                Text(i.workflow),
                Text(_state_label(d, i.state)),
                str(i.version),
                Text(i.org),
                _moment(i.updated_at),
                _moment(i.due_at) + (" 逾期" if i.overdue else ""),
            )
        out = _out()
        out.print(table)
        if page.next_cursor:
            out.print(Text(f"next page: --cursor '{page.next_cursor}'"))


@audit_app.command()
def keygen(
    output: Annotated[
        Path, typer.Option("-o", "--output", help="The private key file to write (mode 0600).")
    ],
) -> None:
    """Make an Ed25519 key pair for signing checkpoints: FILE and FILE.pub."""
    from xieshang.adapters.checkpoints import generate_key

    with _reporting(False):
        pub = generate_key(output)
        _out().print(Text(f"✓ private key {output} (keep it off the database server)"))
        _out().print(Text(f"✓ public key {pub} (give it to whoever verifies)"))


@audit_app.command()
def checkpoint(
    ctx: typer.Context,
    key_file: Annotated[
        Path | None,
        typer.Option("--key-file", help="The private key (else env XIESHANG_AUDIT_KEY)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here (default: stdout).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Sign a statement of the ledger head, to keep outside the database."""
    from xieshang.adapters.checkpoints import (
        load_private_key,
        make_checkpoint,
        write_checkpoint,
    )

    with _reporting(as_json):
        key = load_private_key(key_file)
        engine = _state(ctx).engine()
        made = make_checkpoint(engine.store, key, engine.clock.now())
        if output is None:
            _emit_json(made)
            return
        write_checkpoint(made, output)
        st = made["statement"]
        if as_json:
            _emit_json({"file": str(output), **st})
        else:
            _out().print(Text(f"✓ checkpoint {output}: ledger position {st['position']}"))


@audit_app.command("export")
def export_command(
    ctx: typer.Context,
    org: Annotated[str, typer.Option("--org", help="The org whose instances to export.")],
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (China time).")],
    end: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD (inclusive).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The bundle (.zip) to write.")],
    checkpoints: Annotated[
        list[Path] | None, typer.Option("--checkpoint", help="A checkpoint to include; repeatable.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Write an auditor's bundle: an org's instances of a period, verifiable with no database."""
    from datetime import date

    from xieshang.adapters.bundle import export_bundle

    with _reporting(as_json):
        try:
            first, last = date.fromisoformat(start), date.fromisoformat(end)
        except ValueError:
            raise Usage(
                f"--from {start!r} / --to {end!r}: dates are YYYY-MM-DD", "--from"
            ) from None
        engine = _state(ctx).engine()
        manifest = export_bundle(
            engine.store, org, first, last, output, checkpoints=checkpoints or [],
            now=engine.clock.now(),
        )  # fmt: skip
        if as_json:
            _emit_json({"file": str(output), **manifest})
        else:
            _out().print(
                Text(
                    f"✓ {output}: {manifest['instances']} instances, "
                    f"{manifest['history_rows']} history rows of {org}"
                )
            )


@audit_app.command("verify-bundle")
def verify_bundle_command(
    bundle: Annotated[Path, typer.Argument(help="The bundle written by `audit export`.")],
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="The key its checkpoints were signed with.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Verify an auditor's bundle offline; exit 1 listing every finding."""
    from xieshang.adapters.bundle import verify_bundle

    with _reporting(as_json):
        result = verify_bundle(bundle, public_key)
        if as_json:
            _emit_json(result)
        else:
            for p in result["problems"]:
                seq = "-" if p["seq"] is None else p["seq"]
                where = f"{p['instance_id'] or 'bundle'} seq {seq}"
                if p.get("position") is not None:
                    where += f" position {p['position']}"
                _out().print(Text(f"{where}: {p['kind']}: {p['message']}"))
            if result["ok"]:
                _out().print(
                    Text(
                        f"✓ {result['instances']} instances verified, held to "
                        f"{result['checkpoints']} checkpoint(s)",
                        style="green",
                    )
                )
        if not result["ok"]:
            raise typer.Exit(1)


@audit_app.command()
def readers(
    ctx: typer.Context,
    instance_id: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="One instance; all when omitted.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Rewrite the reader principals of instances from their workflows' read: rules (after
    upgrading a database written before read scopes existed)."""
    with _reporting(as_json):
        engine = _state(ctx).engine()
        changed = engine.rebuild_readers(instance_id)
        if as_json:
            _emit_json({"rewritten": changed})
        else:
            _out().print(Text(f"reader principals rewritten for {changed} instances"))


@audit_app.command()
def verify(
    ctx: typer.Context,
    instance_id: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="One instance; all when omitted.")
    ] = None,
    checkpoints: Annotated[
        list[Path] | None,
        typer.Option("--checkpoint", help="A signed checkpoint to hold the ledger to; repeatable."),
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="The key the checkpoints were signed with.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check hash chains, replays and the ledger; exit 1 listing every finding."""
    with _reporting(as_json):
        statements: list[dict[str, Any]] = []
        if checkpoints:
            from xieshang.adapters.checkpoints import load_public_key, read_checkpoint

            if public_key is None:
                raise Usage("--checkpoint needs --public-key FILE.pub to check it", "--public-key")
            key = load_public_key(public_key)
            statements = [read_checkpoint(cp, key) for cp in checkpoints]
        engine = _state(ctx).engine()
        if instance_id is not None:
            if engine.store.load(instance_id) is None and not engine.store.history(instance_id):
                raise NotFound("instance", instance_id)
            checked = 1
        else:
            checked = sum(1 for _ in engine.store.instance_ids())
        problems = engine.verify(instance_id, checkpoints=statements)
        if as_json:
            _emit_json({"ok": not problems, "checked": checked, "problems": problems})
        elif problems:
            out = _out()
            for p in problems:
                seq = "-" if p["seq"] is None else p["seq"]
                where = f"{p['instance_id'] or 'ledger'} seq {seq}"
                if p.get("position") is not None:
                    where += f" position {p['position']}"
                out.print(Text(f"{where}: {p['kind']}: {p['message']}"))
            _err().print(
                Text(f"{len(problems)} of {checked} instances fail verification", style="red")
            )
        else:
            held = f", held to {len(statements)} checkpoint(s)" if statements else ""
            _out().print(
                Text(f"✓ {checked} instance{'s' * (checked != 1)} verified{held}", style="green")
            )
        if problems:
            raise typer.Exit(1)


@app.command()
def tick(
    ctx: typer.Context,
    now: Annotated[
        str | None,
        typer.Option("--now", help="Fire what is due up to this ISO time (default: the clock)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Fire the timers, deadlines and reminders due up to now, once, as the system actor."""
    with _reporting(as_json):
        moment = _aware(now, "--now") if now is not None else None
        engine = _state(ctx).engine()
        report = engine.tick(moment)
        body = {"fired": report.fired, "stale": report.stale, "conflicts": report.conflicts}
        if as_json:
            _emit_json(body)
        else:
            _out().print(
                Text(
                    f"fired {report.fired}, stale {report.stale}, "
                    f"lost to another worker {report.conflicts}"
                )
            )


@app.command()
def worker(
    ctx: typer.Context,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", help="Seconds between passes when idle.")
    ] = 5.0,
    relay: Annotated[
        bool,
        typer.Option("--relay/--no-relay", help="Also deliver the outbox to the configured sinks."),
    ] = True,
    checkpoint_dir: Annotated[
        Path | None,
        typer.Option("--checkpoint-dir", help="Write signed ledger checkpoints here."),
    ] = None,
    checkpoint_every: Annotated[
        float, typer.Option("--checkpoint-every", help="Minutes between checkpoints.", min=0.01)
    ] = 60.0,
    key_file: Annotated[
        Path | None,
        typer.Option("--key-file", help="The checkpoint key (else env XIESHANG_AUDIT_KEY)."),
    ] = None,
) -> None:
    """Fire due timers (and relay events) until SIGTERM or SIGINT; safe to run several at once.

    With --checkpoint-dir, also sign the ledger head every --checkpoint-every minutes into a
    file named by its time (keep that directory on another machine or write-once storage).
    """
    with _reporting(False):
        engine = _state(ctx).engine()
        checkpoints = _Checkpoints(engine, checkpoint_dir, checkpoint_every, key_file)
        stop = threading.Event()

        def _stop(signum: int, frame: FrameType | None) -> None:
            stop.set()

        previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
        relayer = _worker_relay(ctx) if relay else None
        watch = _CalendarWatch(engine, _state(ctx).settings().calendar)
        watch.poll(first=True)
        _err().print(
            Text(
                f"worker: ticking every {poll_interval:g} s"
                + (f", relaying to {len(relayer.sinks)} sink(s)" if relayer else "")
            )
        )
        try:
            while not stop.is_set():
                watch.poll()
                checkpoints.poll()
                report = engine.tick()
                delivered = relayer.run_once() if relayer is not None else 0
                if report.fired == 0 and delivered == 0:
                    stop.wait(poll_interval)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if relayer is not None:
                relayer.close()
        _err().print(Text("worker: stopped"))


class _Checkpoints:
    """Signs the ledger head into a directory every so many minutes (when it moved)."""

    def __init__(
        self, engine: Engine, directory: Path | None, minutes: float, key_file: Path | None
    ) -> None:
        from xieshang.adapters.checkpoints import load_private_key

        self.engine = engine
        self.directory = directory
        self.seconds = minutes * 60
        self.key = load_private_key(key_file) if directory is not None else None
        self.last = float("-inf")
        self.head: tuple[int, str] | None = None

    def poll(self) -> None:
        import time

        from xieshang.adapters.checkpoints import make_checkpoint, write_checkpoint

        if self.directory is None or self.key is None:
            return
        if time.monotonic() - self.last < self.seconds:
            return
        self.last = time.monotonic()
        head = self.engine.store.ledger_head()
        if head == self.head:
            return
        made = make_checkpoint(self.engine.store, self.key, self.engine.clock.now())
        stamp = made["statement"]["time"].replace(":", "").replace("-", "")[:15]
        write_checkpoint(made, self.directory / f"checkpoint-{stamp}-{head[0]}.json")
        self.head = head


class _CalendarWatch:
    """Reloads the calendar file when it changes and reconciles, on start and after each
    change; a broken file is reported and the calendar in use is kept."""

    def __init__(self, engine: Engine, path: Path | None) -> None:
        self.engine = engine
        self.path = path
        self.seen: float | None = None

    def poll(self, *, first: bool = False) -> None:
        if self.path is None:
            if first:
                self._reconcile()
            return
        try:
            stamp = self.path.stat().st_mtime
        except OSError:
            return
        if stamp == self.seen and not first:
            return
        self.seen = stamp
        if not first:
            try:
                self.engine.use_calendar(load_calendar(self.path))
            except XieshangError as e:
                _err().print(Text(f"worker: calendar file not reloaded: {e.message}", style="red"))
                return
            _err().print(Text(f"worker: calendar {self.path} reloaded"))
        self._reconcile()

    def _reconcile(self) -> None:
        moved = self.engine.reconcile_calendar().changes
        if moved:
            _err().print(Text(f"worker: calendar reconcile moved {len(moved)} deadline(s)"))


def _worker_relay(ctx: typer.Context) -> Any:
    """The event relay with the configured sinks, or None when no sink is configured."""
    from xieshang.adapters.events.cli import _relay

    found = _relay(ctx, with_sinks=True)
    if not found.sinks:
        found.close()
        return None
    return found


def _aware(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Usage(f"{option} {text!r} is not an ISO date-time", option) from None
    if moment.tzinfo is None:
        raise Usage(f"{option} {text!r} needs a timezone, e.g. +08:00", option)
    return moment


def main() -> None:
    """The console script's entry point."""
    app()


if __name__ == "__main__":
    main()
