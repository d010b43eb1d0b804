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
from xieshang.shared import CHINA_TZ, MAX_DEPTH


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
            f"{option} is not valid JSON: {e.msg} at column {e.colno} (got {_short(text)})", option
        ) from None
    except RecursionError:
        raise Usage(
            f"{option} nests deeper than a JSON reader goes (values may nest {MAX_DEPTH} levels)",
            option,
        ) from None
    if not isinstance(value, dict):
        raise Usage(
            f"{option} must be a JSON object, got {type(value).__name__} {_short(text)}", option
        )
    return value


def _short(text: str) -> str:
    return repr(text) if len(text) <= 200 else f"{text[:200]!r}... ({len(text)} characters)"


def _actor(text: str) -> Actor:
    try:
        return Actor.parse(text)
    except InvalidPayload as e:
        detail = "; ".join(str(err.get("error")) for err in e.errors)
        raise Usage(f"--as {text!r} is not an actor: {detail}", "--as", errors=e.errors) from None


def _moment(value: datetime | str | None) -> str:
    """A moment for people: China time, to the minute, with its zone (``2024-09-27 09:00
    +08:00``), so that a reader elsewhere or a log beside it cannot mistake it."""
    if value is None:
        return "-"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    local = moment.astimezone(CHINA_TZ)
    offset = local.strftime("%z")
    return f"{local.strftime('%Y-%m-%d %H:%M')} {offset[:3]}:{offset[3:]}"


def _aware(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Usage(f"{option} {text!r} is not an ISO date-time", option) from None
    if moment.tzinfo is None:
        raise Usage(f"{option} {text!r} needs a timezone, e.g. +08:00", option)
    return moment
