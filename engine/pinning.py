"""Instances keep the definition they started on: what to say when that text and the workflow
file loaded now differ.

Two messages. A file whose content changed while its ``version`` did not is a drift (the
stored instances of that version run another text), reported by ``xieshang validate --db`` and
when an engine is built from settings. A command refused because the instance's definition
lacks a payload field the current file declares names the definition the instance runs, so
that nobody hunts for a field that is plainly in the file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .compiler import CompiledWorkflow
from .errors import InvalidPayload, NotFound
from .records import Instance, iso

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = ["KEEP", "drift_message", "explain_pinned", "runs"]

KEEP = (
    "instances keep the definition they started on (a file with a new version moves them by a "
    "migration: xieshang migrate)"
)
UNDECLARED = "not a declared field"


def drift_message(workflow: str, version: int, count: int) -> str:
    """``proposal@3: the file differs from the text 12 stored instances run; ...``."""
    plural = "s" if count != 1 else ""
    verb = "run" if count != 1 else "runs"
    return (
        f"{workflow}@{version}: the file differs from the text {count} stored instance{plural} "
        f"{verb}; give it a new version"
    )


def runs(wf: CompiledWorkflow, instance: Instance) -> str:
    """Which definition an instance runs: ``proposal@3 (hash 1a2b3c4d5e6f, started ...)``."""
    return (
        f"{wf.id}@{wf.definition.version} (hash {wf.hash[:12]}, started {iso(instance.created_at)})"
    )


def explain_pinned(
    engine: Engine, wf: CompiledWorkflow, instance: Instance, trigger: str, error: InvalidPayload
) -> InvalidPayload:
    """``error`` again, each undeclared field that the current file declares for ``trigger``
    saying which definition the instance runs; ``error`` itself when there is none."""
    try:
        current = engine.registry.get(wf.id)
    except NotFound:
        return error
    if current.hash == wf.hash:
        return error
    declared = {f for t in current.by_trigger.get(trigger, ()) for f in t.spec.payload}
    errors = [
        {
            **e,
            "error": f"{e['error']} in {runs(wf, instance)}, which this instance runs; "
            f"the current file {current.id}@{current.definition.version} (hash "
            f"{current.hash[:12]}) declares it, but {KEEP}",
        }
        if str(e.get("error", "")).startswith(UNDECLARED) and e.get("field") in declared
        else e
        for e in error.errors
    ]
    if errors == error.errors:
        return error
    return InvalidPayload(error.details["what"], errors)
