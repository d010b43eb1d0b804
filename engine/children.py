"""Child instances: spawned by a parent's step, updated by it (``children_set``), joined by it.

What a parent's step does to its children is written in the same commit as the step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .checks import validate_data
from .compiler import CompiledTransition, CompiledWorkflow
from .context import Scope, children_of, full_context, jsonable
from .errors import InvalidPayload
from .records import Commit, Instance
from .rows import PARENT_UPDATE
from .steps import Step, created, data_update

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = ["join_ready", "set_children", "spawn"]


def spawn(
    engine: Engine, commit: Commit, step: Step, new: Instance, *, replay: bool = False
) -> None:
    """Start one child per element of the spawn list, in the same commit as the step.

    A child whose id the spawn names (``spawn.id``) must not exist yet; in a replay, where
    it does, that is not judged again."""
    wf, old, t, actor, now = step.wf, step.instance, step.t, step.command.actor, step.command.now
    spec = t.spec.spawn
    assert spec is not None and t.spawn_for_each is not None
    child_wf = engine.registry.for_start(spec.workflow, old.org, engine.pins)
    engine._remember_definition(child_wf)
    base = full_context(engine, Scope(wf, new, t, actor, step.values, now))
    try:
        items = t.spawn_for_each.run(base)
    except Exception as e:
        raise InvalidPayload(
            f"spawn of {t.trigger!r}", [{"field": "for_each", "error": str(e)}]
        ) from None
    parent_id = old.parent_id if spec.sibling else old.id
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(items or []):
        base.add_variable("item", item)
        base.add_variable("index", index)
        try:
            data = {k: jsonable(expr.run(base)) for k, expr in t.spawn_data}
            unit = t.spawn_bind.run(base) if t.spawn_bind is not None else None
            child_id = t.spawn_id.run(base) if t.spawn_id is not None else None
        except Exception as e:
            errors.append({"field": f"spawn[{index}]", "error": str(e)})
            continue
        if child_id is not None:
            problem = _id_problem(engine, commit, child_id, replay)
            if problem:
                errors.append({"field": f"spawn[{index}].id", "error": problem})
                continue
        try:
            values = validate_data(child_wf, {k: v for k, v in data.items() if v is not None})
        except InvalidPayload as e:
            errors += [{**err, "field": f"spawn[{index}].{err['field']}"} for err in e.errors]
            continue
        created(
            engine,
            commit,
            child_wf,
            values,
            actor,
            step.role,
            old.org,
            now,
            parent_id=parent_id,
            unit=None if unit is None else str(unit),
            instance_id=None if child_id is None else str(child_id),
        )
    if errors:
        raise InvalidPayload(f"children spawned by {t.trigger!r}", errors)


def _id_problem(engine: Engine, commit: Commit, child_id: Any, replay: bool) -> str | None:
    """Why a child cannot take the id its spawn names, or None."""
    if not isinstance(child_id, str) or not child_id:
        return f"an id is a non-empty string (got {child_id!r})"
    if any(i.id == child_id for i in commit.inserts) or (
        not replay and engine.store.load(child_id, fresh=True) is not None
    ):
        return f"instance {child_id!r} already exists"
    return None


def set_children(engine: Engine, commit: Commit, step: Step, new: Instance) -> None:
    """Set ``children_set`` fields on every open child, in the same commit as the step:
    one ``parent_update`` history row per child that changes, its deadline recomputed."""
    wf, t = step.wf, step.t
    ctx = full_context(engine, Scope(wf, new, t, step.command.actor, step.values, step.command.now))
    try:
        wanted = {k: jsonable(expr.run(ctx)) for k, expr in t.children_set}
    except Exception as e:
        raise InvalidPayload(
            f"children_set of {t.trigger!r}", [{"field": "children_set", "error": str(e)}]
        ) from None
    for child in children_of(engine, new.id):
        if child.final:
            continue
        child_wf = engine._workflow_of(child)
        changed = _changes(child_wf, child, wanted)
        if changed:
            payload = {"parent_id": new.id, "parent_trigger": t.trigger, "set": changed}
            data_update(engine, commit, child_wf, child, changed, step, PARENT_UPDATE, payload)


def _changes(wf: CompiledWorkflow, child: Instance, wanted: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``wanted`` the child's workflow has and whose values would change."""
    changed: dict[str, Any] = {}
    for name, value in wanted.items():
        if name not in wf.definition.data:
            continue  # a child of another workflow that has no such field
        if value is not None:
            adapter = wf.field_adapters[name]
            value = adapter.checked(value)
        if child.data.get(name) != value:
            changed[name] = value
    return changed


def join_ready(t: CompiledTransition, children: list[Instance]) -> bool:
    """Whether the children are where ``t``'s ``join:`` waits for them to be."""
    spec = t.spec.join
    assert spec is not None
    counted = [c for c in children if c.state not in spec.ignore]
    if not counted:
        return False
    if spec.when == "all_final":
        return all(c.final for c in counted)
    if spec.when == "all_in":
        return all(c.state in spec.states for c in counted)
    return sum(c.state in spec.states for c in counted) >= (spec.count or 1)
