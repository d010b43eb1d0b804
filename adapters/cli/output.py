"""What every command shares: the consoles, JSON output, errors turned into exit codes, and the
parsing of option values (JSON objects, actors, moments)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from xieshang import Actor, InvalidPayload, Usage, XieshangError
from xieshang.shared import CHINA_TZ


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


def _aware(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Usage(f"{option} {text!r} is not an ISO date-time", option) from None
    if moment.tzinfo is None:
        raise Usage(f"{option} {text!r} needs a timezone, e.g. +08:00", option)
    return moment
