"""Loading a workflow: text -> safe YAML -> definition model -> static checks -> compiled workflow.

Each stage's problems carry the file, the line and the path in the file; all problems of all
stages that could run are collected before :class:`DefinitionError` is raised.

Problem codes (stable; editors and CI pipelines may act on them):

===== ====================== ==========================================================
XS001 yaml-syntax            not valid YAML, or empty
XS002 too-large              over the size or nesting limit
XS003 duplicate-key          the same key twice in one mapping
XS010 schema                 a value of the wrong type, a missing or an unknown key
XS101 unknown-state          a transition, timer or join names a state that does not exist
XS102 duplicate-transition   the same trigger, source and target twice with the same guard
XS103 initial-state          not exactly one initial state
XS104 unreachable-state      no path from the initial state
XS105 trap-state             a non-final state with no way out
XS106 no-path-to-final       no final state can be reached from it
XS107 final-has-exit         a transition leaves a final state
XS110 unknown-role           a transition names a role the workflow does not declare
XS111 unknown-field          ``set`` (or an ``update:``) writes a data field that is not declared
XS112 unknown-param          ``params.NAME`` that is not declared
XS113 unknown-trigger        a timer, ``not_by``, ``fire_on`` or ``children_fire`` names a trigger
                             that does not exist (or that the system role may not fire)
XS114 payload-collision      one trigger declares the same payload field with two types
XS115 bad-duration           a duration that cannot be read
XS116 bad-default            a default that does not fit its type
XS117 duplicate-id           two files define the same workflow id and version
XS118 unknown-workflow       a spawn, update, ``fire_on``, ``children_fire`` or ``cascade`` names
                             a workflow that is not loaded
XS120 bad-expression         CEL that does not parse
XS121 unknown-name           CEL reads a name that is not available there
XS122 unknown-function       CEL calls a function that does not exist
XS123 unknown-member         CEL reads a field, parameter or attribute that is not declared
XS124 unbound-units          a read rule's ``units`` names a role that ``bound_roles`` does not bind
XS125 duplicate-warning      two ``warn:`` entries of one transition share a code
XS126 bad-warn-mode          a ``warn:`` mode that is not warn, refuse or a string param holding one
XS127 wrong-type             a value that cannot fit where it goes: a ``set``, ``update`` or spawn
                             ``data`` of a field, a guard or ``when`` that gives no bool, a
                             ``for_each`` that gives no list
XS128 type-mismatch          a comparison or arithmetic between types that cannot meet
XS129 bad-literal            a date or duration literal in an expression that does not parse
XS130 bad-call               a function called with the wrong number or types of arguments
XS131 spawn-missing-field    spawn ``data`` leaves out a field the child workflow requires
XS132 spawn-unknown-field    spawn ``data`` names a field the child workflow does not declare
XS133 cascade-gap            a ``cascade`` on a transition to a state that is not final, or whose
                             trigger the system may not fire from an open state of a child workflow
XS134 unknown-type           a field's ``type`` or ``items`` names neither a built-in type nor one
                             of ``types:``
XS135 bad-type               a ``types:`` entry that is neither ``{enum: [...]}`` nor
                             ``{fields: {...}}``, or that takes a built-in type's name
XS136 type-cycle             an object type that contains itself, directly or through others
XS137 bad-role-group         a role group naming an unknown role, taking a role's name, or empty
XS138 unknown-let            ``let.NAME`` in an expression or a message, not declared in ``let:``
XS139 bad-let                a ``let:`` that does not compile, is not text, or uses itself
XS140 bad-branches           ``branches`` that are empty or not a list, a branch without ``to`` or
                             holding ``trigger``/``from``, a branch without guard that is not the
                             last, or a transition with branches that has its own ``to`` or guard
===== ====================== ==========================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .access_rules import check_access
from .cascade import check_cascade
from .checker import SYSTEM_ROLE, Checker, KnownWorkflow, suggest, system_triggers
from .compiler import CompiledChildFire, CompiledTransition, CompiledWorkflow
from .definition import ChildFireSpec, Definition, TransitionSpec
from .errors import DefinitionError, Problem
from .expressions import DOMAIN_FUNCTIONS, LOOKUP, Compiled, merge_needs
from .factoring import Expanded, expand
from .salvage import Unsure, salvage
from .schema_types import record_adapter, value_adapter
from .shape_errors import SCHEMA_CODE
from .start_guard import compile_start
from .state_checks import check_graph, check_states, check_timers
from .warn_rules import compile_warnings
from .yamlsafe import Located, Path, read_yaml

__all__ = [
    "KnownWorkflow",
    "compile_definition",
    "load_definition",
    "parse_definition",
    "read_definition",
    "system_triggers",
]


def parse_definition(
    text: str | bytes, file: str = ""
) -> tuple[Definition | None, Located | None, list[Problem]]:
    """Stages 1 and 2: safe YAML, then the pydantic model. Returns the problems of both, and
    no definition when the file does not fit the format's shape."""
    definition, located, problems, unsure = read_definition(text, file)
    return (None if unsure is not None else definition), located, problems


def read_definition(
    text: str | bytes, file: str = ""
) -> tuple[Definition | None, Located | None, list[Problem], Unsure | None]:
    """Stages 1 and 2, keeping what of a misshapen file can still be checked.

    Returns the definition (repaired around the places that do not fit the format, when the
    returned :class:`Unsure` is not None: it is only for checking, never for running), the
    located data, the problems of both stages, and what the repairs left unknown.
    """
    located, problems = read_yaml(text, file)
    if located is None:
        return None, None, problems, None
    if not isinstance(located.data, dict):
        expected = "a workflow file is a mapping such as {id: proposal, version: 1, ...}"
        problems.append(located.problem(SCHEMA_CODE, "schema", expected, ()))
        return None, located, problems, None
    expansion = expand(located)
    if expansion.data is not located.data:
        located = Expanded(located, expansion.origin, expansion.data)
    definition, shape_problems, unsure = salvage(located)
    if expansion.problems:
        unsure = unsure or Unsure()
        unsure.lost |= expansion.lost
        unsure.shaped |= expansion.lost
    return definition, located, [*problems, *expansion.problems, *shape_problems], unsure


def load_definition(
    text: str | bytes,
    file: str = "",
    *,
    params: Mapping[str, Any] | None = None,
    known_workflows: Iterable[str] | Mapping[str, KnownWorkflow] | None = None,
) -> CompiledWorkflow:
    """Read, check and compile one workflow file.

    Args:
        text: the YAML text.
        file: the file name shown in problems.
        params: deployment overrides of the definition's params (name -> value).
        known_workflows: the workflow ids a spawn, an update or a ``fire_on`` may name; None
            skips that check. A mapping of each id to its :class:`KnownWorkflow` also checks
            the fields an update sets and the trigger a ``fire_on`` names.

    Returns:
        The compiled workflow, cached by the caller under (id, version, content hash).

    Raises:
        DefinitionError: with every problem found, each with its file, line and path.
    """
    definition, located, problems, unsure = read_definition(text, file)
    if definition is None or located is None:
        raise DefinitionError(problems)
    return compile_definition(
        definition,
        located=located,
        params=params,
        known_workflows=known_workflows,
        problems=problems,
        source=str(text if isinstance(text, str) else text.decode()),
        unsure=unsure,
    )


def compile_definition(
    definition: Definition,
    *,
    located: Located | None = None,
    params: Mapping[str, Any] | None = None,
    known_workflows: Iterable[str] | Mapping[str, KnownWorkflow] | None = None,
    problems: list[Problem] | None = None,
    source: str = "",
    unsure: Unsure | None = None,
) -> CompiledWorkflow:
    """Stages 3 and 4: static checks, then compilation. Raises DefinitionError with all problems.

    ``unsure`` comes with a definition repaired from a misshapen file (:func:`read_definition`):
    the checks skip what the repairs left unknown, and the definition is never compiled.
    """
    located = located or Located(None, {}, "")
    checker = _Checker(definition, located, params or {}, known_workflows, unsure)
    checker.run()
    found = [*(problems or []), *checker.problems]
    if found or unsure is not None:
        raise DefinitionError(found)
    if checker.effective is not definition:
        definition = checker.effective
    return CompiledWorkflow(
        definition=definition,
        params=checker.param_values,
        transitions=checker.compiled,
        data_adapter=record_adapter(f"{definition.id}_data", definition.data),
        field_adapters={k: value_adapter(v) for k, v in definition.data.items()},
        functions=checker.functions,
        source=source,
        deadline_at=checker.deadline_at,
        bound=checker.bound,
        read_rules=tuple(checker.read_rules),
        start_guard=checker.start_guard,
        start_message_parts=checker.start_message_parts,
    )


class _Checker(Checker):
    """Runs every static check of one definition, collecting problems."""

    def run(self) -> None:
        self.check_params()
        self.check_fields(self.d.data, ("data",))
        check_states(self)
        self.check_transitions()
        check_timers(self)
        check_access(self)
        check_graph(self)

    def check_transitions(self) -> None:
        triggers = set(self.d.triggers())
        roles = set(self.d.roles) | {SYSTEM_ROLE}
        for j, role in enumerate(self.d.start.roles):
            self.role_ref(role, roles, ("start", "roles", j))
        self.start_guard, self.start_message_parts = compile_start(self)
        seen: dict[tuple[str, str, str, str | None], int] = {}
        payload_types: dict[tuple[str, str], tuple[str, int]] = {}
        for i, t in enumerate(self.d.transitions):
            path: Path = ("transitions", i)
            for j, source in enumerate(t.from_):
                if (
                    self.state_ref(
                        source, (*path, "from", j) if len(t.from_) > 1 else (*path, "from")
                    )
                    and self.d.states[source].final
                ):
                    self.add(
                        "XS107",
                        "final-has-exit",
                        f"state {source!r} is final; no transition may leave it",
                        (*path, "from"),
                    )
                key = (t.trigger, source, t.to, t.guard)
                if key in seen:
                    self.add(
                        "XS102",
                        "duplicate-transition",
                        f"same trigger, source, target and guard as transitions[{seen[key]}]",
                        path,
                    )
                seen.setdefault(key, i)
            self.state_ref(t.to, (*path, "to"))
            if not t.roles and t.join is None and not self.unknown(*path, "roles"):
                self.add(
                    "XS110",
                    "unknown-role",
                    "a transition needs roles (use [system] for automatic steps)",
                    (*path, "roles"),
                )
            for j, role in enumerate(t.roles):
                self.role_ref(role, roles, (*path, "roles", j))
            not_by: Path = (*path, "not_by")
            if not isinstance(t.not_by, tuple):
                not_by = (*not_by, "triggers")
            for j, other in enumerate(t.not_by_triggers):
                if other not in triggers and not self.trigger_unknown(other):
                    self.add(
                        "XS113",
                        "unknown-trigger",
                        f"unknown trigger {other!r}" + suggest(other, triggers),
                        (*not_by, j),
                    )
            for name, spec in t.payload.items():
                if self.unknown(*path, "payload", name):
                    continue
                prev = payload_types.get((t.trigger, name))
                if prev is not None and prev[0] != spec.type:
                    self.add(
                        "XS114",
                        "payload-collision",
                        f"payload field {name!r} of {t.trigger!r} is {spec.type} here "
                        f"but {prev[0]} in transitions[{prev[1]}]",
                        (*path, "payload", name),
                    )
                payload_types.setdefault((t.trigger, name), (spec.type, i))
            self.check_fields(t.payload, (*path, "payload"))
            check_cascade(self, i, t)
            self.compiled.append(self.compile_transition(i, t))

    def compile_transition(self, i: int, t: TransitionSpec) -> CompiledTransition:
        path: Path = ("transitions", i)
        names, members = self.names(t)
        guard_names, _ = self.guard_names(t)
        guard = (
            self.expr(t.guard, (*path, "guard"), guard_names, members, lookup=True)
            if t.guard
            else None
        )
        message_parts = (
            self.placeholders(
                t.guard_message, (*path, "guard_message"), guard_names, members, lookup=True
            )
            if t.guard_message is not None
            else ()
        )
        sets = []
        for name, source in t.set.items():
            if name not in self.d.data and not self.unknown("data"):
                self.add(
                    "XS111",
                    "unknown-field",
                    f"set writes undeclared field {name!r}" + suggest(name, self.d.data),
                    (*path, "set", name),
                )
            compiled = self.expr(source, (*path, "set", name), names, members)
            if compiled is not None:
                sets.append((name, compiled))
        spawn_for_each = spawn_bind = spawn_id = None
        spawn_data: list[tuple[str, Compiled]] = []
        if t.spawn is not None:
            sp = t.spawn
            self.workflow_ref(sp.workflow, "spawn", (*path, "spawn", "workflow"))
            spawn_for_each = self.expr(sp.for_each, (*path, "spawn", "for_each"), names, members)
            item_names, item_members = self.names(t, "item", "index")
            item_members["item"] = None
            for name, source in sp.data.items():
                compiled = self.expr(
                    source, (*path, "spawn", "data", name), item_names, item_members
                )
                if compiled is not None:
                    spawn_data.append((name, compiled))
            if sp.bind:
                spawn_bind = self.expr(sp.bind, (*path, "spawn", "bind"), item_names, item_members)
            if sp.id:
                spawn_id = self.expr(sp.id, (*path, "spawn", "id"), item_names, item_members)
        children_set = []
        for name, source in t.children_set.items():
            compiled = self.expr(source, (*path, "children_set", name), names, members)
            if compiled is not None:
                children_set.append((name, compiled))
        update_instance, update_set = self.compile_update(t, path, names, members)
        fire_on_instance, fire_on_payload = self.fire_on(t, path, names, members)
        children_fire = [
            self.child_fire(t, (*path, "children_fire", j), f)
            for j, f in enumerate(t.children_fire)
        ]
        warnings = compile_warnings(self, i, t)
        payload = record_adapter(f"{t.trigger}_payload", dict(t.payload)) if t.payload else None
        exprs = [guard, *(c for _, c in sets), *(w.when for w in warnings)]
        return CompiledTransition(
            message_parts=message_parts,
            needs=merge_needs(*exprs),
            uses_functions=any(
                c is not None and bool(set(c.program.functions()) & DOMAIN_FUNCTIONS) for c in exprs
            ),
            index=i,
            spec=t,
            sources=frozenset(t.from_),
            roles=frozenset(t.roles) | ({SYSTEM_ROLE} if t.join is not None else frozenset()),
            guard=guard,
            sets=tuple(sets),
            payload=payload,
            spawn_for_each=spawn_for_each,
            spawn_data=tuple(spawn_data),
            spawn_bind=spawn_bind,
            spawn_id=spawn_id,
            children_set=tuple(children_set),
            uses_lookup=any(
                c is not None and LOOKUP in c.program.functions()
                for c in (guard, *(part for _, part in message_parts))
            ),
            update_instance=update_instance,
            update_set=update_set,
            fire_on_instance=fire_on_instance,
            fire_on_payload=fire_on_payload,
            children_fire=tuple(c for c in children_fire if c is not None),
            warnings=warnings,
        )

    def compile_update(
        self, t: TransitionSpec, path: Path, names: list[str], members: dict[str, Any]
    ) -> tuple[Compiled | None, tuple[tuple[str, Compiled], ...]]:
        """An ``update:``'s id expression and field effects; its workflow and fields checked
        against the workflows loaded alongside."""
        up = t.update
        if up is None:
            return None, ()
        path = (*path, "update")
        self.workflow_ref(up.workflow, "update", (*path, "workflow"))
        fields = None if self.known_fields is None else self.known_fields.get(up.workflow)
        compiled = []
        for name, source in up.set.items():
            if fields is not None and name not in fields:
                self.add(
                    "XS111",
                    "unknown-field",
                    f"update sets field {name!r}, which workflow {up.workflow!r} does not declare"
                    + suggest(name, fields),
                    (*path, "set", name),
                )
            expr = self.expr(source, (*path, "set", name), names, members)
            if expr is not None:
                compiled.append((name, expr))
        return self.expr(up.instance, (*path, "instance"), names, members), tuple(compiled)

    def fire_on(
        self, t: TransitionSpec, path: Path, names: list[str], members: dict[str, Any]
    ) -> tuple[Compiled | None, tuple[tuple[str, Compiled], ...]]:
        """The compiled ``fire_on`` of a transition: its instance id and payload expressions."""
        spec = t.fire_on
        if spec is None:
            return None, ()
        where: Path = (*path, "fire_on")
        known = self.workflow_ref(spec.workflow, "fire_on", (*where, "workflow"))
        triggers = self.system_triggers.get(spec.workflow)
        if known and triggers is not None and spec.trigger not in triggers:
            self.add(
                "XS113",
                "unknown-trigger",
                f"fire_on names trigger {spec.trigger!r}, which no transition of "
                f"{spec.workflow!r} lets the system role fire" + suggest(spec.trigger, triggers),
                (*where, "trigger"),
            )
        instance = self.expr(spec.instance, (*where, "instance"), names, members)
        payload = []
        for name, source in spec.payload.items():
            compiled = self.expr(source, (*where, "payload", name), names, members)
            if compiled is not None:
                payload.append((name, compiled))
        return instance, tuple(payload)

    def child_fire(
        self, t: TransitionSpec, path: Path, spec: ChildFireSpec
    ) -> CompiledChildFire | None:
        """One ``children_fire`` entry: its workflow loaded alongside, its trigger one the system
        role may fire there, its expressions compiled over this instance and ``child``."""
        known = self.workflow_ref(spec.workflow, "children_fire", (*path, "workflow"))
        triggers = self.system_triggers.get(spec.workflow)
        if known and triggers is not None and spec.trigger not in triggers:
            self.add(
                "XS113",
                "unknown-trigger",
                f"children_fire names trigger {spec.trigger!r}, which no transition of "
                f"{spec.workflow!r} lets the system role fire" + suggest(spec.trigger, triggers),
                (*path, "trigger"),
            )
        names, members = self.names(t, "child")
        members["child"] = None
        when = self.expr(spec.when, (*path, "when"), names, members)
        payload = [
            (name, self.expr(source, (*path, "payload", name), names, members))
            for name, source in spec.payload.items()
        ]
        if when is None or any(c is None for _, c in payload):
            return None
        return CompiledChildFire(spec, when, tuple((k, c) for k, c in payload if c is not None))
