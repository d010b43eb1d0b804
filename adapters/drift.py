"""Workflow files that changed without a new version: the stored instances of that version run
another text (definitions are stored by content hash), which the file no longer shows."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from xieshang import CompiledWorkflow
from xieshang.adapters.sql import engine_for
from xieshang.adapters.sql.tables import definitions as DEFINITIONS
from xieshang.adapters.sql.tables import instances as INSTANCES
from xieshang.shared import drift_message

__all__ = ["definition_drift", "warn_of_drift"]

log = logging.getLogger("xieshang.definitions")


def definition_drift(source: Any, workflows: Iterable[CompiledWorkflow]) -> list[str]:
    """One warning per loaded workflow whose id and version the stored instances share while
    they run another text, with how many instances do.

    Args:
        source: a database URL, a store, an engine over one, or a SQLAlchemy engine.
        workflows: the workflows loaded now (a registry).
    """
    loaded: dict[tuple[str, int], set[str]] = {}
    texts: dict[tuple[str, int], dict[str, Any]] = {}
    for wf in workflows:  # several hashes a version: the variants of a deployment's orgs
        loaded.setdefault((wf.id, wf.definition.version), set()).add(wf.hash)
        texts[(wf.id, wf.definition.version)] = _without_params(wf.definition.to_json())
    if not loaded:
        return []
    db, owned = engine_for(source)
    try:
        query = (
            sa.select(
                INSTANCES.c.workflow,
                INSTANCES.c.workflow_version,
                INSTANCES.c.definition_hash,
                sa.func.count(),
            )
            .where(INSTANCES.c.workflow.in_(sorted({w for w, _ in loaded})))
            .group_by(
                INSTANCES.c.workflow, INSTANCES.c.workflow_version, INSTANCES.c.definition_hash
            )
        )
        with db.connect() as conn:
            rows = conn.execute(query).all()
            other = sorted({h for w, v, h, _ in rows if (w, v) in loaded and h not in loaded[w, v]})
            bodies = dict(
                conn.execute(
                    sa.select(DEFINITIONS.c.hash, DEFINITIONS.c.body).where(
                        DEFINITIONS.c.hash.in_(other)
                    )
                ).all()
            )
    finally:
        if owned:
            db.dispose()
    counts: dict[tuple[str, int], int] = {}
    for workflow, version, content_hash, count in rows:
        key = (workflow, version)
        if key not in loaded or content_hash in loaded[key]:
            continue
        body = bodies.get(content_hash)
        if body is not None and _without_params(json.loads(body)) == texts[key]:
            continue  # the same file, started under other params (a deployment's settings)
        counts[key] = counts.get(key, 0) + count
    return [drift_message(w, v, n) for (w, v), n in sorted(counts.items())]


def _without_params(body: dict[str, Any]) -> dict[str, Any]:
    """A definition's JSON without its params' values, which a deployment sets."""
    params = {
        name: {k: v for k, v in spec.items() if k != "default"}
        for name, spec in (body.get("params") or {}).items()
    }
    return {**body, "params": params}


def warn_of_drift(source: Any, workflows: Iterable[CompiledWorkflow]) -> list[str]:
    """:func:`definition_drift`, each warning also logged on ``xieshang.definitions``."""
    found = definition_drift(source, workflows)
    for message in found:
        log.warning(message)
    return found
