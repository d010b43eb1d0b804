"""The replay of a ``migrate`` row: the definition it moves to and the instance after it.

A replay applies the row as it recorded the migration (:mod:`xieshang.migration`), after
checking that it follows from the definition and state the instance is in, that the data it
leaves fit the new definition, and that an ``admin`` wrote it; the rows after it replay on the
new definition.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from .checks import validate_data
from .compiler import CompiledWorkflow
from .errors import TransitionNotAllowed
from .migration import MIGRATE
from .records import HistoryEntry, Instance
from .repair import apply_recorded_due
from .suspension import judge_admin_row

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = ["apply_migration"]


def apply_migration(
    engine: Engine, instance: Instance, row: HistoryEntry, now: datetime
) -> tuple[CompiledWorkflow, Instance]:
    """In a replay: the definition a ``migrate`` row moves to and the instance after it.

    Raises:
        Forbidden: the row was not written by an ``admin``.
        TransitionNotAllowed: the row does not start from the definition and state the
            instance is in, or names a state its new definition does not have.
        InvalidPayload: the data it leaves do not fit the new definition.
    """
    judge_admin_row(row)
    record = row.payload
    to_wf = engine._workflow_by_hash(row.definition_hash)
    source = (record.get("from") or {}).get("hash")
    named = (record.get("to") or {}).get("hash")
    if (
        source != instance.definition_hash
        or named != row.definition_hash
        or to_wf.id != instance.workflow
        or row.source != instance.state
        or row.target not in to_wf.definition.states
    ):
        raise TransitionNotAllowed(
            f"replay of row {row.seq}: a migration of {instance.workflow} from "
            f"{str(source)[:12]} state {row.source!r} to {to_wf.id} {row.definition_hash[:12]} "
            f"state {row.target!r} does not follow from {instance.definition_hash[:12]} state "
            f"{instance.state!r}",
            trigger=MIGRATE,
            state=instance.state,
            allowed=[],
        )
    new = instance.copy()
    new.version += 1
    new.updated_at = now
    new.workflow_version = to_wf.definition.version
    new.definition_hash = to_wf.hash
    new.state = row.target
    new.final = row.target in to_wf.final_states
    for name, value in (record.get("set") or {}).items():
        if value is None:
            new.data.pop(name, None)
        else:
            new.data[name] = value
    validate_data(to_wf, new.data)
    apply_recorded_due(new, record)
    return to_wf, new
