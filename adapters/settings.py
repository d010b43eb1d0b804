"""Deployment settings from ``XIESHANG_*`` environment variables, and the engine they build."""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AwareDatetime, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from xieshang import (
    CalendarChain,
    CalendarError,
    Clock,
    DutyRules,
    Engine,
    FixedClock,
    Registry,
    SettingsError,
    Store,
    SystemClock,
    Usage,
    load_duties,
    parse_calendar_file,
)
from xieshang.shared import deploy, field_errors

from .sql.connect import masked_url

__all__ = [
    "DEFAULT_DATABASE_URL",
    "CheckedSettings",
    "Settings",
    "build_engine",
    "command_database_url",
    "database_url_setting",
    "load_calendar",
    "load_duty_rules",
    "load_workflows",
    "masked_url",
    "workflow_paths",
]

DEFAULT_DATABASE_URL = "sqlite:///./xieshang.db"


def database_url_setting(text: str) -> str:
    """The database URL a setting or ``--db`` names: a URL, or a path to a SQLite file.

    Raises:
        SettingsError: text with a NUL character, or a URL that cannot be read; the message
            shows the URL with its password masked (:func:`masked_url`).
    """
    text = text.strip()
    shown = masked_url(text)
    if not text or "\x00" in text:
        wanted = "expected a database URL or a SQLite file's path, without NUL characters"
        raise SettingsError("settings", [{"field": "database_url", "error": wanted}])
    if "://" not in text:
        return f"sqlite:///{text}"
    try:
        make_url(text)
    except (ArgumentError, ValueError) as e:
        reason = str(e).replace(text, shown)
        error = {
            "field": "database_url",
            "error": f"cannot read the URL {shown!r} ({reason}); expected sqlite:///PATH, a "
            "path, or postgresql://USER:PASSWORD@HOST:PORT/DATABASE",
        }
        raise SettingsError("settings", [error]) from None
    return text


class CheckedSettings(BaseSettings):
    """Settings whose validation errors are a :class:`SettingsError` naming each setting.

    A setting named in ``_secrets`` is never shown as given: its validator names it masked
    (:func:`masked_url`), and a model that has one hides inputs from pydantic's own message
    (``hide_input_in_errors``), which stays chained as the cause.
    """

    _what: ClassVar[str] = "settings"
    _secrets: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, /, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as e:
            errors = field_errors(e)
            for error in errors:
                if str(error["field"]).partition(".")[0] in self._secrets:
                    error.pop("got", None)  # its validator names it, masked
            raise SettingsError(self._what, errors) from e

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # no file name, URL or name holds one, and the store would refuse it later
        parts = value if isinstance(value, list | tuple) else [value]
        if any(isinstance(p, str | Path) and "\x00" in str(p) for p in parts):
            raise ValueError("a setting cannot hold a NUL character (U+0000)")
        return value


class Settings(CheckedSettings):
    """Where a deployment keeps its data, which workflows it runs and what time it is.

    Every field is read from the environment with the prefix ``XIESHANG_``
    (``XIESHANG_DATABASE_URL``, ``XIESHANG_WORKFLOWS``, ``XIESHANG_CLOCK``,
    ``XIESHANG_DEPLOYMENT``, ``XIESHANG_SYNCHRONOUS``, ``XIESHANG_CALENDAR``,
    ``XIESHANG_PINS``, ``XIESHANG_CONFIG``); keyword arguments
    win over the environment.

    Raises:
        SettingsError: a setting is invalid; ``errors`` names each one.
    """

    model_config = SettingsConfigDict(
        env_prefix="XIESHANG_", extra="ignore", frozen=True, hide_input_in_errors=True
    )
    _secrets: ClassVar[frozenset[str]] = frozenset({"database_url"})

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        min_length=1,
        description="a URL (sqlite:///PATH, postgresql://...) or a SQLite file's path",
    )
    workflows: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description=f"directories or files of workflow YAML; {os.pathsep!r}-separated in the env",
    )
    clock: AwareDatetime | None = Field(
        default=None,
        description="a simulated clock (ISO datetime with a timezone); None: the system clock",
    )
    deployment: str = Field(default="default", min_length=1)
    calendar: Path | None = Field(
        default=None,
        description="the deployment's calendar file (YAML, one block per year); None: the "
        "official table, then provisional statutory holidays",
    )
    duties: Path | None = Field(
        default=None,
        description="the deployment's members' duty rules (YAML); None: the bundled default",
    )
    config: Path | None = Field(
        default=None,
        description="the deployment's settings file (YAML: orgs, their workflows, versions and "
        "params); None: every org runs every workflow, newest version, default params",
    )
    synchronous: Literal["FULL", "NORMAL"] = "FULL"
    pins: Annotated[dict[str, dict[str, int]], NoDecode] = Field(
        default_factory=dict,
        description="per org, the workflow versions its new instances start on; "
        "ORG:WORKFLOW=VERSION, comma-separated in the env (the newest version otherwise)",
    )

    @field_validator("database_url", mode="after")
    @classmethod
    def _readable_url(cls, value: str) -> str:
        try:
            return database_url_setting(value)
        except SettingsError as e:
            raise ValueError(e.errors[0]["error"]) from None

    @field_validator("workflows", mode="before")
    @classmethod
    def _split_paths(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [p for p in value.split(os.pathsep) if p]
        return value

    @field_validator("pins", mode="before")
    @classmethod
    def _read_pins(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        pins: dict[str, dict[str, int]] = {}
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            org, _, rest = part.partition(":")
            workflow, _, version = rest.partition("=")
            if not (org and workflow and version.isdigit()):
                raise ValueError(
                    f"expected ORG:WORKFLOW=VERSION[,...], e.g. guiyang:proposal=1 (got {part!r})"
                )
            pins.setdefault(org.strip(), {})[workflow.strip()] = int(version)
        return pins

    @field_validator("clock", mode="before")
    @classmethod
    def _iso_only(cls, value: Any) -> Any:
        # pydantic would also read "2024" as a Unix timestamp: a simulated clock is ISO text only
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                moment = None
            if moment is None or moment.tzinfo is None:
                raise ValueError(
                    "expected an ISO datetime with a timezone, e.g. 2024-09-27T09:00:00+08:00"
                )
            return moment
        return value

    @field_validator("synchronous", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    def make_clock(self) -> Clock:
        """A :class:`FixedClock` at ``clock`` when set, else the system clock."""
        return FixedClock(self.clock) if self.clock is not None else SystemClock()


def workflow_paths(settings: Settings, dirs: Iterable[str | os.PathLike[str]] = ()) -> list[Path]:
    """The workflow files a deployment loads: bundled, ``settings.workflows``, then ``dirs``.

    A file reached twice (a directory named both in the environment and on the command line) is
    loaded once, so that it does not clash with itself.
    """
    from xieshang.workflows import workflow_files

    seen: set[Path] = set()
    out: list[Path] = []
    for f in workflow_files([*settings.workflows, *dirs]):
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def load_workflows(settings: Settings, dirs: Iterable[str | os.PathLike[str]] = ()) -> Registry:
    """A new registry of every workflow file of :func:`workflow_paths`.

    The files are read each time; files with the same names and bytes as before are not compiled
    again (see :meth:`xieshang.Registry.from_texts`).

    Raises:
        DefinitionError: every problem of every file.
    """
    return Registry.from_texts((str(f), f.read_bytes()) for f in workflow_paths(settings, dirs))


def load_duty_rules(path: str | os.PathLike[str] | None, registry: Registry) -> DutyRules:
    """The deployment's duty rules: the file at ``path``, or the bundled default, checked
    against ``registry``.

    Raises:
        DutiesFileError: the file is invalid (every problem listed).
        Usage: the file cannot be read.
    """
    from xieshang.workflows import default_duties

    if path is None:
        return default_duties(registry)
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as e:
        raise Usage(
            f"cannot read the duty rules file {str(file)!r}: {e.strerror or e}", "--duties"
        ) from None
    return load_duties(text, str(file), registry)


def load_calendar(path: str | os.PathLike[str] | None) -> CalendarChain:
    """The deployment's calendar: the file at ``path`` over the package tables.

    Raises:
        CalendarError: the file does not exist or cannot be read.
        CalendarFileError: the file has problems (every one listed, with its line).
    """
    if path is None:
        return CalendarChain()
    file = Path(path)
    try:
        text = file.read_bytes()
    except OSError as e:
        raise CalendarError(
            f"cannot read the calendar file {str(file)!r}: {e.strerror or e}", file=str(file)
        ) from e
    return CalendarChain(parse_calendar_file(text, str(file)), origin=str(file))


def command_database_url(ctx: Any, db: str | None = None) -> str:
    """The database a command works on: its own ``--db``, else the global ``--db``, else the
    settings (``XIESHANG_DATABASE_URL``). A bare path is a SQLite file.

    Args:
        ctx: the command's typer context (its root object holds the global options).
        db: the command's own ``--db``, if it has one.

    Raises:
        SettingsError: the URL cannot be read (shown with its password masked).
    """
    root = ctx.find_root().obj
    db = db or getattr(root, "db", None)
    if db is None:
        settings = getattr(root, "settings", None)
        return str(settings().database_url if callable(settings) else Settings().database_url)
    return database_url_setting(db)


def open_configured_store(settings: Settings) -> Store:
    """The SQL store at ``settings.database_url``, its schema created or upgraded."""
    from xieshang.adapters.sql.store import open_store

    store: Store = open_store(settings.database_url, synchronous=settings.synchronous)
    return store


def build_engine(
    settings: Settings, *, workflows_dirs: Iterable[str | os.PathLike[str]] = ()
) -> Engine:
    """An engine as ``settings`` describe it.

    The workflows are loaded first, so that a broken workflow file opens no database. A
    workflow file whose content changed while its version did not, with stored instances of
    that version on the old text, is logged as a warning on ``xieshang.definitions``.

    Args:
        settings: the deployment's settings.
        workflows_dirs: more directories (or files) of workflow YAML, after ``settings.workflows``.

    Raises:
        DefinitionError: a workflow file is invalid (every problem listed).
        CalendarError: the calendar file is missing or invalid (every problem listed).
        DeploymentError: the deployment settings file is invalid (every problem listed), or
            names another version than ``XIESHANG_PINS`` for an org's workflow.
    """
    from xieshang.adapters.config import load_config

    registry = load_workflows(settings, workflows_dirs)
    config = load_config(settings.config, registry, settings.pins)
    calendar = load_calendar(settings.calendar)
    duties = load_duty_rules(settings.duties, registry)
    if config is not None:  # each org's variants compiled before a database opens
        registry = deploy(registry, config, settings.pins)
    store = open_configured_store(settings)
    from xieshang.adapters.drift import warn_of_drift

    # a file edited without a new version: logged, not refused
    warn_of_drift(store, registry.versions())
    return Engine(
        store,
        registry,
        settings.make_clock(),
        deployment=settings.deployment,
        calendar=calendar,
        pins=settings.pins,
        duties=duties,
    )
