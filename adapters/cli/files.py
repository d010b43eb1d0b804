"""Commands on workflow files: ``validate``, ``schema``, ``diagram``."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from xieshang import Definition, DefinitionError, Registry, Usage, load_definition
from xieshang.adapters.common import DiagramFormat, draw
from xieshang.adapters.settings import command_database_url, workflow_paths
from xieshang.shared import read_yaml
from xieshang.workflows import BUNDLED_DIR

from .app import JsonFlag, _state, app
from .database import require_database
from .output import _emit_json, _err, _out, _reporting

DOT_TIMEOUT_SECONDS = 120


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
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Also warn of each file changed without a new version while this database's "
            "instances of that version run the old text.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check workflow files together (with the bundled ones known); list every problem."""
    as_json = as_json or output_format is OutputFormat.json
    db = db or getattr(ctx.find_root().obj, "db", None)
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
        warnings: list[str] = []
        try:
            registry = Registry.from_texts((str(f), f.read_bytes()) for f in [*context, *targets])
        except DefinitionError as e:
            problems = e.problems
        else:
            if db is not None:
                from xieshang.adapters.drift import definition_drift

                url = command_database_url(ctx, db)
                require_database(url)
                warnings = definition_drift(url, [w for w in registry if w.id in replaced])
        if as_json:
            report: dict[str, Any] = {
                "valid": not problems,
                "files": [str(f) for f in targets],
                "problems": [p.to_dict() for p in problems],
            }
            if db is not None:
                report["warnings"] = warnings
            _emit_json(report)
        else:
            out = _out()
            bad = {p.file for p in problems}
            for f in targets:
                if str(f) not in bad:
                    out.print(Text(f"✓ {f}", style="green"))
            for p in problems:
                out.print(Text(str(p)), markup=False)
            for w in warnings:
                _err().print(Text(f"warning: {w}", style="yellow"))
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
