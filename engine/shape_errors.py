"""How a definition that does not fit the format's shape reads: each validation error as a
problem at its path in the file (``XS010``), never in pydantic's own terms."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from .errors import DefinitionError, Problem
from .yamlsafe import Path, format_path

__all__ = ["SCHEMA_CODE", "schema_errors", "shape_error"]

SCHEMA_CODE = "XS010"


def _path_in_file(loc: tuple[Any, ...]) -> Path:
    out: list[str | int] = []
    for part in loc:
        if part == "from_":
            part = "from"
        elif part == "in_":
            part = "in"
        if isinstance(part, str) and ("[" in part or part in {"function-after", "function-before"}):
            continue  # pydantic's names for union members and validators are not places in the file
        out.append(part)
    return tuple(out)


def _schema_message(err: Any) -> str:
    kind = err["type"]
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key"
    got = repr(err.get("input"))
    if len(got) > 60:
        got = got[:57] + "..."
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{msg} (got {got})"


def schema_errors(error: ValidationError) -> list[tuple[Path, str]]:
    """Each error of a definition's validation as (its path in the file, a message)."""
    return [
        (_path_in_file(err["loc"]), _schema_message(err)) for err in error.errors(include_url=False)
    ]


def shape_error(error: ValidationError) -> DefinitionError:
    found = schema_errors(error)
    return DefinitionError(
        [
            Problem(SCHEMA_CODE, "schema", msg, format_path(path), extra={"at": path})
            for path, msg in found
        ]
    )
