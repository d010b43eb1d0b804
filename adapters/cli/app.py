"""The ``xieshang`` app: its root group (plugins loaded on first use), the global options and
the state built from them, and the option types the commands share."""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from xieshang import DefinitionError, Engine, Registry, SettingsError, Usage, XieshangError
from xieshang.adapters.settings import (
    Settings,
    build_engine,
    command_database_url,
    load_duty_rules,
    load_workflows,
)
from xieshang.shared import deploy

from .database import require_database
from .output import _fail

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
    **dict.fromkeys(["migrate", "suspend", "resume", "admin"], "xieshang.adapters.cli.migrate"),
    "member": "xieshang.adapters.cli.members",
    "duties": "xieshang.adapters.cli.members",
}


# Commands of PLUGINS that only read the database: like list or show, they refuse a database
# that is not there rather than create it
READING_PLUGINS = frozenset({"report"})
JSON_FLAG = "--json"
JSON_META = "xieshang.json"
PIPED_WIDTH = "10000"  # piped output is never wrapped or cut short: tables as wide as they are
_root: ContextVar[Any] = ContextVar("xieshang_root")


class _JsonDefaults(Mapping[str, Any]):
    """The ``default_map`` that ``--json`` anywhere on the line sets: each command's ``as_json``
    (or, for a command that has only ``--format``, ``json``), and for a group its commands'."""

    def __init__(self, command: Any) -> None:
        self.command = command

    def __getitem__(self, key: str) -> Any:
        commands = getattr(self.command, "commands", None)
        if commands is not None and key in commands:
            return _JsonDefaults(commands[key])
        names = {p.name for p in getattr(self.command, "params", ())}
        if key == "as_json" and key in names:
            return True
        if key == "fmt" and "as_json" not in names and key in names:
            return "json"
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _reading(callback: Callable[..., Any]) -> Callable[..., Any]:
    """A plugin command's callback that first refuses a database that is not there."""

    @functools.wraps(callback)
    def checked(*args: Any, **kwargs: Any) -> Any:
        require_database(command_database_url(_root.get(), kwargs.get("db")))
        return callback(*args, **kwargs)

    return checked


@contextmanager
def _piped_width() -> Iterator[None]:
    """Rich reads the width of a pipe as 80 columns and cuts tables to it; a pipe gets them
    whole."""
    if sys.stdout.isatty():
        yield
        return
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = PIPED_WIDTH
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = before


class _Group(TyperGroup):
    """The root command group, with the commands of :data:`PLUGINS` loaded when first named.

    ``--json`` is taken anywhere on the line, before or after the command's name; an error no
    command turned into a message (a plugin's) is shown as one, never as a traceback.
    """

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
                if name in READING_PLUGINS and command.callback is not None:
                    command.callback = _reading(command.callback)
                self.commands.setdefault(name, command)
        return super().get_command(ctx, cmd_name)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        end = args.index("--") if "--" in args else len(args)
        if JSON_FLAG in args[:end]:
            args = [a for a in args[:end] if a != JSON_FLAG] + args[end:]
            ctx.meta[JSON_META] = True
            ctx.default_map = _JsonDefaults(self)
        return list(super().parse_args(ctx, args))

    def invoke(self, ctx: Any) -> Any:
        token = _root.set(ctx)
        try:
            with _piped_width():
                return super().invoke(ctx)
        except (Usage, SettingsError) as e:
            _fail(e.message, e.to_dict(), 2, bool(ctx.meta.get(JSON_META)))
        except XieshangError as e:
            _fail(e.message, e.to_dict(), 1, bool(ctx.meta.get(JSON_META)))
        finally:
            _root.reset(token)


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
# the filters and paging that every listing offers
WorkflowFilter = Annotated[str | None, typer.Option("--workflow", help="Only this workflow.")]
UnitFilter = Annotated[
    str | None, typer.Option("--unit", help="Only instances of this unit of their own.")
]
OverdueFilter = Annotated[
    bool | None, typer.Option("--overdue/--not-overdue", help="Only overdue ones, or not.")
]
PageSize = Annotated[int, typer.Option("--limit", min=1, max=1000, help="Page size.")]
PageCursorOption = Annotated[
    str | None, typer.Option("--cursor", help="Where the previous page ended.")
]
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
    duties: Path | None = None
    config: Path | None = None
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
            if self.duties is not None:
                overrides["duties"] = self.duties
            if self.config is not None:
                overrides["config"] = self.config
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

    def check_config(self) -> None:
        """Refuse a broken deployment settings file before any command opens a database (a
        broken workflow file is left to the command, which names its problems its own way)."""
        if self.settings().config is None:
            return
        try:
            registry = self.registry()
        except DefinitionError:
            return
        from xieshang.adapters.config import load_config

        config = load_config(self.settings().config, registry, self.settings().pins)
        assert config is not None
        deploy(registry, config, self.settings().pins)

    def engine(self, *, reading: bool = False) -> Engine:
        """The engine; with ``reading``, for a command that only reads, which refuses a
        database that is not there (naming it) rather than create it."""
        if self._engine is None:
            if reading:
                # a broken workflow or duty rules file is named before any database
                load_duty_rules(self.settings().duties, self.registry())
                require_database(self.settings().database_url)
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
        "duties": "--duties",
        "config": "--config",
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
        typer.Option(
            "--db",
            help="Database URL or SQLite file path (env XIESHANG_DATABASE_URL).",
            show_default=False,
        ),
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
    duties: Annotated[
        Path | None,
        typer.Option(
            "--duties",
            help="The deployment's members' duty rules, YAML (env XIESHANG_DUTIES).",
            show_default=False,
        ),
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="The deployment's settings file: orgs, their workflows, versions and params "
            "(env XIESHANG_CONFIG).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Machine-readable JSON on stdout; also taken after any command's name."
        ),
    ] = False,
) -> None:
    state = _State(
        db=db,
        workflows=list(workflows or []),
        clock=clock,
        calendar=calendar,
        duties=duties,
        config=config_file,
    )
    ctx.obj = state
    ctx.call_on_close(state.close)
    if ctx.invoked_subcommand != "config":
        state.check_config()


def _state(ctx: typer.Context) -> _State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, _State) else _State()
