"""``xieshang explore FILE``: walk a workflow before anyone uses it, and say what never happens."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from xieshang import Usage

from .app import JsonFlag, app
from .output import _emit_json, _err, _out, _reporting


@app.command()
def explore(
    path: Annotated[Path, typer.Argument(help="The workflow file to explore.")],
    budget: Annotated[
        int, typer.Option(min=1, max=100_000, help="Situations to walk at most.")
    ] = 400,
    depth: Annotated[int, typer.Option(min=1, max=1000, help="Steps from a start at most.")] = 40,
    emit_test: Annotated[
        Path | None,
        typer.Option(
            "--emit-test",
            help="Write a hypothesis stateful test of the workflow into this folder.",
            show_default=False,
        ),
    ] = None,
    examples: Annotated[
        int, typer.Option(min=1, max=10_000, help="Examples the emitted test runs.")
    ] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Walk a workflow with generated data, payloads and actors (every check of the engine
    applies) and report the states, final states, triggers and timers that never came to pass,
    and why: a guard that refused every payload, a not_by rule that barred every actor, no actor
    allowed or able to read. Exit 1 when anything is found. The walk is bounded: a guard that
    needs values of a kind it does not generate, or other instances, can hide a state from it."""
    from xieshang.adapters.explore import (
        emit_test as write_test,
    )
    from xieshang.adapters.explore import (
        findings,
        registry_for,
        walk,
        workflow_of,
    )

    with _reporting(as_json):
        if not path.is_file():
            raise Usage(f"{str(path)!r}: no such file", "path")
        declared = workflow_of(path)
        registry = registry_for([path])  # DefinitionError lists every problem of the file
        if declared is None:
            raise Usage(f"{str(path)!r} declares no workflow id", "path")
        wf = registry.get(declared[0], declared[1])
        result = walk(registry, wf.id, budget=budget, depth=depth)
        found = findings(wf, result)
        written = (
            write_test(wf, result, [str(path.resolve())], emit_test, examples=examples)
            if emit_test is not None
            else None
        )
        if as_json:
            _emit_json(
                {
                    "workflow": wf.id,
                    "version": wf.definition.version,
                    "situations": result.situations,
                    "commands": result.attempts,
                    "bounded": result.bounded,
                    "reached": sorted(result.reached.get(wf.id, ())),
                    "fired": sorted(result.fired.get(wf.id, ())),
                    "findings": [f.to_dict() for f in found],
                    "test": str(written) if written else None,
                }
            )
        else:
            out = _out()
            states = len(wf.definition.states)
            reached = len(result.reached.get(wf.id, ()))
            out.print(
                f"{wf.id} v{wf.definition.version}: walked {result.situations} situations, "
                f"{result.attempts} commands; reached {reached} of {states} states"
            )
            if result.bounded:
                out.print(
                    Text("the walk ran out of its budget: raise --budget or --depth", "yellow")
                )
            for f in found:
                out.print(Text(f"{f.kind:<24} {f.where:<36} {f.message}"), markup=False)
            if written is not None:
                out.print(f"wrote {written} (run it with pytest)")
            if found:
                _err().print(Text(f"{len(found)} finding{'s' * (len(found) != 1)}", style="red"))
        if found:
            raise typer.Exit(1)
