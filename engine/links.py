"""A step's update of another instance it names by id (a transition's ``update:``).

The supervision of a key proposal writes its outcome back to the proposal: the instance is
named by an expression over the step, must be of the declared workflow and of the same org,
and gets one ``linked_update`` history row in the step's commit. A replay applies that row as
recorded, as it does a parent's ``parent_update``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from .compiler import CompiledWorkflow
from .context import Scope, full_context, jsonable
from .errors import InvalidPayload
from .records import Commit, Instance
from .rows import LINKED_UPDATE
from .schema_types import field_errors
from .steps import Step, data_update
from .suspension import suspended_refusal

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = ["update_linked"]


def update_linked(engine: Engine, commit: Commit, step: Step, new: Instance) -> None:
    """Set the ``update:`` fields on the instance it names, in the same commit as the step.

    Nothing is written when the id is null or no field changes.

    Raises:
        InvalidPayload: the id is not text, names this instance, its parent or one of its
            children, or names no instance of the declared workflow in this org; a field the
            target does not declare; a value its field refuses. Each names what was refused
            and what is allowed.
    """
    t = step.t
    spec = t.spec.update
    assert spec is not None and t.update_instance is not None
    what = f"update of {t.trigger!r}"
    scope = Scope(step.wf, new, t, step.command.actor, step.values, step.command.now)
    ctx = full_context(engine, scope)
    try:
        target_id = jsonable(t.update_instance.run(ctx))
        wanted = {k: jsonable(expr.run(ctx)) for k, expr in t.update_set}
    except Exception as e:
        raise InvalidPayload(what, [{"field": "update", "error": str(e)}]) from None
    if target_id is None:
        return
    if not isinstance(target_id, str) or target_id == new.id:
        error = "must name another instance by its id"
        raise InvalidPayload(what, [{"field": "update.instance", "error": error, "got": target_id}])
    target = engine.store.load(target_id, fresh=True)
    if target is None or target.org != new.org or target.workflow != spec.workflow:
        error = f"no {spec.workflow!r} instance {target_id!r} in org {new.org!r}"
        raise InvalidPayload(what, [{"field": "update.instance", "error": error}])
    if target.id == new.parent_id or target.parent_id == new.id:
        # the step's own commit may already write that row (a join, children_set)
        error = (
            f"{target_id!r} is this instance's parent or child: a parent's step sets its "
            "children's fields with children_set, a child's steps reach its parent by a join"
        )
        raise InvalidPayload(what, [{"field": "update.instance", "error": error}])
    if target.suspended_at is not None:  # a suspended instance takes no writes: its clock stopped
        raise suspended_refusal(target, t.trigger)
    target_wf = engine._workflow_of(target)
    changed = _changed(target_wf, target, wanted, what)
    if changed:
        payload = {
            "from_id": new.id,
            "from_workflow": new.workflow,
            "from_trigger": t.trigger,
            "set": changed,
        }
        data_update(engine, commit, target_wf, target, changed, step, LINKED_UPDATE, payload)


def _changed(
    wf: CompiledWorkflow, target: Instance, wanted: dict[str, Any], what: str
) -> dict[str, Any]:
    """The values of ``wanted``, validated by the target's fields, that differ from its data;
    every field refused is listed."""
    declared = wf.definition.data
    errors: list[dict[str, Any]] = []
    changed: dict[str, Any] = {}
    for name, value in wanted.items():
        where = f"update.set.{name}"
        if name not in declared:
            error = f"not a field of {target.workflow!r}; its fields: " + ", ".join(declared)
            errors.append({"field": where, "error": error})
            continue
        if value is None and declared[name].required:
            errors.append({"field": where, "error": "a required field cannot be unset"})
            continue
        if value is not None:
            adapter = wf.field_adapters[name]
            try:
                value = adapter.checked(value)
            except ValidationError as e:
                errors += field_errors(e, where)
                continue
        if target.data.get(name) != value:
            changed[name] = value
    if errors:
        raise InvalidPayload(what, errors)
    return changed
