"""Migration: move open instances of a workflow to another version of its definition.

Instances keep the definition they started on. A migration, by an ``admin``, moves each open
instance of a workflow (of one org, or of all) to the definition of another version: its state
by a mapping (a state the new version does not have must be mapped), its data by ``set``
expressions (CEL over the old ``data``, ``instance``, ``now`` and the new ``params``; null
removes a field), then validated against the new data fields (defaults filled). Each instance
gets one internal, audited ``migrate`` row whose ``definition_hash`` is the new definition's and
whose payload names both definitions, the mapping, the values set and the deadline; its deadline
and timers are counted again on the new definition. One instance is migrated whole or not at
all, and a dry run reports what would change and what cannot, changing nothing.

What cannot be migrated is reported per instance: a state with no mapping, data the new version
does not declare or refuses (a newly required field with no value), a pending timer the new
version no longer has in that state, open children on another version than the new one starts,
and a suspended instance. A replay switches to the new definition at the ``migrate`` row
(:mod:`xieshang.migration_replay`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import access
from .checks import validate_data
from .compiler import CompiledWorkflow
from .context import children_of, functions_of, jsonable
from .deadlines import due, timers_for
from .errors import ConcurrencyConflict, Forbidden, InvalidPayload, NotFound, Usage
from .expressions import Compiled, ExpressionError, compile_expression, instance_view, new_context
from .inputs import refuse_bad_input
from .ports import PageCursor, Query
from .records import Actor, Commit, Instance, TimerRecord, canonical_json, iso
from .repair import recorded_due
from .rows import history_row
from .suspension import ADMIN_ROLE, require_admin

if TYPE_CHECKING:
    from .runtime import Engine

__all__ = ["MIGRATE", "MigrationPlan", "MigrationReport", "migrate"]

MIGRATE = "migrate"
_NAMES = ("data", "instance", "now", "params")
_PAGE = 500


@dataclass(frozen=True, slots=True)
class MigrationPlan:
    """What a migration does to one instance, or why it cannot (``problems``)."""

    instance_id: str
    org: str
    from_version: int
    from_hash: str
    state: str
    target: str
    set: dict[str, Any] = field(default_factory=dict)  # data fields written; None: removed
    problems: list[str] = field(default_factory=list)
    migrated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "org": self.org,
            "from_version": self.from_version,
            "from_hash": self.from_hash,
            "state": self.state,
            "target": self.target,
            "set": self.set,
            "problems": self.problems,
            "migrated": self.migrated,
        }


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """A migration's plans, one per open instance not yet on the new definition."""

    workflow: str
    to_version: int
    to_hash: str
    dry_run: bool
    plans: list[MigrationPlan]

    @property
    def migrated(self) -> int:
        return sum(p.migrated for p in self.plans)

    @property
    def refused(self) -> int:
        return sum(bool(p.problems) for p in self.plans)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "to_version": self.to_version,
            "to_hash": self.to_hash,
            "dry_run": self.dry_run,
            "migrated": self.migrated,
            "refused": self.refused,
            "instances": [p.to_dict() for p in self.plans],
        }


def migrate(
    engine: Engine,
    workflow: str,
    to_version: int,
    actor: Actor,
    *,
    org: str | None = None,
    state_map: Mapping[str, str] | None = None,
    set_exprs: Mapping[str, str] | None = None,
    dry_run: bool = False,
    reason: str | None = None,
) -> MigrationReport:
    """Migrate the open instances of ``workflow`` (see the module and
    :meth:`Engine.migrate`)."""
    require_admin(actor, MIGRATE)
    if actor.org is not None and org not in (None, actor.org):
        raise Forbidden(
            f"actor {actor.id!r} of org {actor.org!r} cannot migrate the instances of org {org!r}",
            trigger=MIGRATE,
            actor=actor.id,
            allowed=[actor.org],
        )
    org = org if org is not None else actor.org  # an org's admin migrates its own
    versions = engine.registry.version_numbers(workflow)
    if isinstance(to_version, bool) or not isinstance(to_version, int):
        raise Usage(f"--to must be a version number (got {to_version!r})", "to")
    if to_version not in versions:
        known = [f"{workflow} v{v}" for v in versions] or engine.registry.ids()
        raise NotFound("workflow", f"{workflow} v{to_version}", allowed=known)
    to_wf = engine.registry.get(workflow, to_version)
    refuse_bad_input(f"the state map of {MIGRATE!r}", state_map, actor, reason=reason)
    refuse_bad_input(f"the data set by {MIGRATE!r}", set_exprs, actor)
    mapping = _checked_map(to_wf, dict(state_map or {}))
    exprs = _compiled_sets(engine, to_wf, dict(set_exprs or {}))
    why = (reason or "").strip() or f"migrate {workflow} to version {to_version}"
    now = engine.clock.now()
    plans: list[MigrationPlan] = []
    remembered: set[str] = set()
    for instance in _open_instances(engine, workflow, org):
        # an org with its own params moves to the new version with those params
        target_wf = engine.registry.for_version(workflow, to_version, instance.org)
        if instance.definition_hash == target_wf.hash:
            continue
        if not dry_run and target_wf.hash not in remembered:
            engine._remember_definition(target_wf)
            remembered.add(target_wf.hash)
        plans.append(
            _migrate_one(engine, instance, target_wf, mapping, exprs, actor, why, now, dry_run)
        )
    return MigrationReport(workflow, to_version, to_wf.hash, dry_run, plans)


def _migrate_one(
    engine: Engine,
    instance: Instance,
    to_wf: CompiledWorkflow,
    mapping: dict[str, str],
    exprs: dict[str, Compiled],
    actor: Actor,
    reason: str,
    now: datetime,
    dry_run: bool,
) -> MigrationPlan:
    """One instance planned and, unless ``dry_run``, migrated; planned again on the stored row
    once when another writer moved it first."""
    plan, commit = _plan(engine, instance, to_wf, mapping, exprs, actor, reason, now)
    if commit is None or dry_run:
        return plan
    try:
        engine.store.apply(commit)
    except ConcurrencyConflict as first:
        fresh = engine.store.load(instance.id, fresh=True)
        if fresh is None or fresh.version == instance.version or fresh.final:
            lost = f"changed by another command while migrating ({first.message}); run it again"
            return _with(plan, problems=[lost])
        return _migrate_one(engine, fresh, to_wf, mapping, exprs, actor, reason, now, dry_run)
    return _with(plan, migrated=True)


def _with(plan: MigrationPlan, **changes: Any) -> MigrationPlan:
    return MigrationPlan(**{**plan.to_dict(), **changes})


def _open_instances(engine: Engine, workflow: str, org: str | None) -> Iterator[Instance]:
    after: PageCursor | None = None
    while True:
        page = engine.store.query(
            Query(workflow=workflow, org=org, final=False, limit=_PAGE, after=after)
        )
        yield from page
        if len(page) < _PAGE:
            return
        after = PageCursor.of(page[-1])


def _checked_map(to_wf: CompiledWorkflow, mapping: dict[str, str]) -> dict[str, str]:
    states = list(to_wf.definition.states)
    for old, new in mapping.items():
        if new not in to_wf.definition.states:
            raise Usage(
                f"--map {old}={new}: {new!r} is not a state of {to_wf.id} version "
                f"{to_wf.definition.version}; its states: {', '.join(states)}",
                "map",
            )
    return mapping


def _compiled_sets(
    engine: Engine, to_wf: CompiledWorkflow, exprs: dict[str, str]
) -> dict[str, Compiled]:
    """The ``set`` expressions compiled; each names a field of the new version, or one of an
    older version (which can only be removed: what is left undeclared is reported)."""
    fields = list(to_wf.definition.data)
    older = {f for w in engine.registry.versions() if w.id == to_wf.id for f in w.definition.data}
    out: dict[str, Compiled] = {}
    for name, source in exprs.items():
        if name not in to_wf.definition.data and name not in older:
            raise Usage(
                f"--set {name}=...: {name!r} is not a data field of {to_wf.id} version "
                f"{to_wf.definition.version} nor of an older version; its fields: "
                f"{', '.join(fields)}",
                "set",
            )
        try:
            out[name] = compile_expression(
                source, names=_NAMES, members=dict.fromkeys(_NAMES), lookup=False
            )
        except ExpressionError as e:
            raise Usage(f"--set {name}={source}: {e.message}", "set") from None
    return out


def _plan(
    engine: Engine,
    instance: Instance,
    to_wf: CompiledWorkflow,
    mapping: dict[str, str],
    exprs: dict[str, Compiled],
    actor: Actor,
    reason: str,
    now: datetime,
) -> tuple[MigrationPlan, Commit | None]:
    """The plan for one instance, and the commit that carries it out when nothing stands in
    its way."""
    version = to_wf.definition.version
    target = mapping.get(instance.state, instance.state)
    plan = MigrationPlan(
        instance.id,
        instance.org,
        instance.workflow_version,
        instance.definition_hash,
        instance.state,
        target,
    )
    problems: list[str] = []
    if instance.suspended_at is not None:
        problems.append(
            f"suspended since {iso(instance.suspended_at)}: resume it before it is migrated"
        )
    if target not in to_wf.definition.states:
        problems.append(
            f"state {instance.state!r} has no mapping: version {version} has no such state; "
            f"map it with --map {instance.state}=STATE (states: "
            f"{', '.join(to_wf.definition.states)})"
        )
    data, problems = _new_data(engine, instance, to_wf, exprs, now, problems)
    pending = engine.store.timers_of(instance.id)
    problems += _timer_problems(pending, to_wf, target)
    problems += _children_problems(engine, instance, to_wf)
    written = {
        k: data.get(k)
        for k in sorted(set(data) | set(instance.data))
        if canonical_json(data.get(k)) != canonical_json(instance.data.get(k))
    }
    plan = _with(plan, set=written, problems=problems)
    if problems:
        return plan, None
    new = instance.copy()
    new.version += 1
    new.updated_at = now
    new.workflow_version = version
    new.definition_hash = to_wf.hash
    new.state = target
    new.data = data
    new.final = target in to_wf.final_states
    if not new.overdue:  # an instance marked overdue keeps its mark and its date
        new.due_at, new.due_basis = due(engine, to_wf, new)
    record = {
        "from": {"version": instance.workflow_version, "hash": instance.definition_hash},
        "to": {"version": version, "hash": to_wf.hash},
        "map": {instance.state: target} if target != instance.state else {},
        "set": written,
        "exprs": {k: c.source for k, c in exprs.items()},
        **recorded_due(new),
    }
    entry = history_row(
        instance,
        new,
        MIGRATE,
        actor,
        ADMIN_ROLE,
        record,
        now=now,
        recorded_at=engine.clock.now(),
        reason=reason,
        visibility="internal",
    )
    commit = Commit(
        updates=[(new, instance.version)],
        history=[entry],
        clear_timers=[instance.id],
        timers=_new_timers(engine, engine._workflow_of(instance), to_wf, instance, new, pending),
        readers={new.id: access.readers(to_wf, new)},
    )
    return plan, commit


def _new_data(
    engine: Engine,
    instance: Instance,
    to_wf: CompiledWorkflow,
    exprs: dict[str, Compiled],
    now: datetime,
    problems: list[str],
) -> tuple[dict[str, Any], list[str]]:
    """The instance's data under the new version, and the problems found on the way."""
    data = dict(instance.data)
    variables = {
        "data": dict(instance.data),
        "instance": instance_view(instance),
        "now": now,
        "params": to_wf.params,
    }
    ctx = new_context(variables, functions_of(engine, to_wf))
    for name, expr in exprs.items():
        try:
            value = jsonable(expr.run(ctx))
        except Exception as e:  # a CEL evaluation error or a failed date function
            problems.append(f"--set {name}={expr.source}: {getattr(e, 'message', e)}")
            continue
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    undeclared = [k for k in data if k not in to_wf.definition.data]
    for name in undeclared:
        problems.append(
            f"data field {name!r} is not declared in version {to_wf.definition.version}; "
            f"drop it with --set {name}=null or map it onto a declared field"
        )
    if undeclared:
        return data, problems
    try:
        return validate_data(to_wf, data), problems
    except InvalidPayload as e:
        for error in e.errors:
            name = error.get("field") or "data"
            hint = (
                f"; give it a value with --set {name}=EXPR" if name in to_wf.definition.data else ""
            )
            problems.append(f"data field {name!r}: {error.get('error')}{hint}")
        return data, problems


def _timer_problems(pending: list[TimerRecord], to_wf: CompiledWorkflow, target: str) -> list[str]:
    kept = {spec.fire for spec in to_wf.definition.timers if spec.in_ == target}
    return [
        f"its pending timer firing {t.trigger!r} at {iso(t.due_at)} no longer exists: version "
        f"{to_wf.definition.version} has no such timer in state {target!r}"
        for t in pending
        if t.kind == "timer" and t.trigger not in kept
    ]


def _children_problems(engine: Engine, instance: Instance, to_wf: CompiledWorkflow) -> list[str]:
    spawned = {t.spec.spawn.workflow for t in to_wf.transitions if t.spec.spawn is not None}
    out = []
    for child in children_of(engine, instance.id):
        if child.final:
            continue
        runs = f"its open child {child.id} runs {child.workflow}@{child.workflow_version}"
        if child.workflow not in spawned:
            out.append(f"{runs}, which version {to_wf.definition.version} does not start")
            continue
        starts = engine.registry.for_start(child.workflow, instance.org, engine.pins)
        if starts.definition.version != child.workflow_version:
            out.append(
                f"{runs}; version {to_wf.definition.version} starts "
                f"{child.workflow}@{starts.definition.version}: migrate the children first"
            )
    return out


def _new_timers(
    engine: Engine,
    from_wf: CompiledWorkflow,
    to_wf: CompiledWorkflow,
    old: Instance,
    new: Instance,
    pending: list[TimerRecord],
) -> list[TimerRecord]:
    """The timers of the new definition's state visit, less what already fired in it: a
    reminder already sent, a timer the old definition had there that is no longer pending."""
    was = {(t.kind, t.trigger) for t in pending}
    had = {spec.fire for spec in from_wf.definition.timers if spec.in_ == old.state}
    out = []
    for t in timers_for(engine, to_wf, new):
        if t.kind == "reminder" and old.due_at is not None and (t.kind, t.trigger) not in was:
            continue
        if t.kind == "timer" and t.trigger in had and (t.kind, t.trigger) not in was:
            continue
        out.append(t)
    return out
