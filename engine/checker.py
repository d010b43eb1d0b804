"""The loader's checker: the state of the static checks of one definition, and the checks every
section shares (references to states, roles and params, durations, defaults, expressions).

:mod:`xieshang.loading` runs the checks in their order; the checks of one section that are long
enough to read on their own live in modules of their own (:mod:`xieshang.access_rules`,
:mod:`xieshang.warn_rules`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from pydantic import ValidationError

from .access import CompiledRule
from .calendar import parse_duration
from .compiler import CompiledTransition
from .date_functions import date_functions
from .definition import Definition, FieldSpec, Label, ParamSpec, TransitionSpec
from .errors import CalendarError, Problem
from .expressions import (
    ACTOR_FIELDS,
    INSTANCE_FIELDS,
    PARENT,
    PARENT_FIELDS,
    Compiled,
    ExpressionError,
    compile_expression,
)
from .salvage import Unsure
from .schema_types import value_adapter
from .shape_errors import suggest
from .typecheck import check_types
from .yamlsafe import Located, Path

__all__ = [
    "SYSTEM_ROLE",
    "Checker",
    "KnownWorkflow",
    "known_workflow",
    "open_states",
    "suggest",
    "system_triggers",
]

SYSTEM_ROLE = "system"
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


class KnownWorkflow(NamedTuple):
    """What the other workflows loaded alongside declare, for the checks of references to them.

    ``open_states`` maps each state that is not final to the triggers the system role may fire
    from it (None: not known), for the check of a ``cascade``."""

    fields: frozenset[str]
    system_triggers: frozenset[str]
    complete: bool = True  # False: a misshapen file, whose fields and triggers may be more
    data: Mapping[str, FieldSpec] | None = None  # the fields with their types, when known
    open_states: Mapping[str, frozenset[str]] | None = None


def known_workflow(definition: Definition, *, complete: bool = True) -> KnownWorkflow:
    """What ``definition`` is to the workflows loaded alongside it (``complete``: False for a
    misshapen file, whose fields and triggers may be more)."""
    return KnownWorkflow(
        frozenset(definition.data),
        system_triggers(definition),
        complete,
        definition.data,
        open_states(definition),
    )


def open_states(definition: Definition) -> dict[str, frozenset[str]]:
    """Each state of ``definition`` that is not final, and the triggers the system may fire
    from it."""
    return {
        name: frozenset(
            t.trigger
            for t in definition.transitions
            if name in t.from_ and (SYSTEM_ROLE in t.roles or t.join is not None)
        )
        for name, spec in definition.states.items()
        if not spec.final
    }


def system_triggers(definition: Definition) -> frozenset[str]:
    """The triggers of ``definition`` that the ``system`` role may fire (timers, joins and
    ``fire_on`` from another instance)."""
    return frozenset(
        t.trigger for t in definition.transitions if SYSTEM_ROLE in t.roles or t.join is not None
    )


class Checker:
    """The problems found so far in one definition, and what its checks compiled."""

    def __init__(
        self,
        definition: Definition,
        located: Located,
        overrides: Mapping[str, Any],
        known_workflows: Iterable[str] | Mapping[str, KnownWorkflow] | None,
        unsure: Unsure | None = None,
    ) -> None:
        self.d = definition
        self.loc = located
        self.unsure = unsure or Unsure()
        self.overrides = overrides
        self.known_workflows = None if known_workflows is None else set(known_workflows)
        known = known_workflows if isinstance(known_workflows, Mapping) else None
        self.known_fields = (
            {k: set(v.fields) for k, v in known.items() if v.complete}
            if known is not None
            else None
        )
        self.system_triggers: dict[str, set[str]] = (
            {k: set(v.system_triggers) for k, v in known.items() if v.complete}
            if known is not None
            else {}
        )
        if not self.unknown("transitions") and not self.unsure.dropped:
            self.system_triggers[definition.id] = set(system_triggers(definition))
        self.known_data = {
            k: v.data for k, v in (known or {}).items() if v.data is not None and v.complete
        }
        self.open_states: dict[str, Mapping[str, frozenset[str]] | None] = (
            {k: v.open_states for k, v in known.items() if v.complete} if known is not None else {}
        )
        if not self.unknown("transitions") and not self.unsure.dropped:
            self.open_states[definition.id] = open_states(definition)
        self.problems: list[Problem] = []
        self.compiled: list[CompiledTransition] = []
        self.param_values: dict[str, Any] = {}
        self.effective = definition
        self.functions = date_functions(definition.calendar)
        self.deadline_at: dict[str, Compiled] = {}
        self.bound: dict[str, tuple[Compiled, ...] | None] = {}
        self.read_rules: list[CompiledRule] = []
        self.start_guard: Compiled | None = None
        self.start_message_parts: tuple[tuple[str, Compiled], ...] = ()

    def add(self, code: str, name: str, message: str, path: Path) -> None:
        """A problem at ``path`` of the definition, unless a shape problem already covers it."""
        if self.unsure.covered(path):
            return
        problem = self.loc.problem(code, name, message, self.unsure.origin(path))
        if problem not in self.problems:
            self.problems.append(problem)

    def unknown(self, *path: str | int) -> bool:
        """Whether what the file holds at ``path`` is unknown (a repaired misshapen place)."""
        return self.unsure.unknown(path)

    def trigger_unknown(self, trigger: str) -> bool:
        """Whether ``trigger`` may be one of a transition the file holds in a broken shape."""
        dropped = self.unsure.dropped_triggers()
        return self.unknown("transitions") or dropped is None or trigger in dropped

    # -- params and fields -------------------------------------------------------------------

    def check_params(self) -> None:
        unknown = sorted(set(self.overrides) - set(self.d.params))
        if self.unknown("params"):
            unknown = []
        for name in unknown:
            self.add(
                "XS112",
                "unknown-param",
                f"override of unknown param {name!r}" + suggest(name, self.d.params),
                ("params",),
            )
        new_params: dict[str, ParamSpec] = {}
        for name, spec in self.d.params.items():
            value = self.overrides.get(name, spec.default)
            problem = None if self.unknown("params", name) else param_problem(spec, value)
            if problem:
                where = "override" if name in self.overrides else "default"
                self.add(
                    "XS116",
                    "bad-default",
                    f"{where} {value!r}: {problem}",
                    ("params", name, "default"),
                )
            self.param_values[name] = value
            if name in self.overrides:
                new_params[name] = spec.model_copy(update={"default": value})
        if new_params and not self.problems:
            self.effective = self.d.model_copy(update={"params": {**self.d.params, **new_params}})
            # a copy keeps the original's cached content hash: the new params must change it
            self.effective.__dict__.pop("content_hash", None)

    def check_fields(self, fields: Mapping[str, FieldSpec], path: Path) -> None:
        for name, spec in fields.items():
            if spec.default is None or self.unknown(*path, name):
                continue
            try:
                value_adapter(spec).validate_python(spec.default)
            except ValidationError as e:
                msg = e.errors(include_url=False)[0]["msg"]
                self.add(
                    "XS116",
                    "bad-default",
                    f"default {spec.default!r}: {msg}",
                    (*path, name, "default"),
                )

    def check_duration(self, text: str, path: Path) -> None:
        if text.startswith("params."):
            name = text.removeprefix("params.")
            if self.unknown("params", name):
                return
            if name not in self.d.params:
                self.add(
                    "XS112",
                    "unknown-param",
                    f"unknown param {name!r}" + suggest(name, self.d.params),
                    path,
                )
            elif self.d.params[name].type != "duration":
                self.add(
                    "XS115",
                    "bad-duration",
                    f"param {name!r} is a {self.d.params[name].type}, not a duration",
                    path,
                )
            return
        try:
            parse_duration(text)
        except CalendarError as e:
            self.add("XS115", "bad-duration", e.message, path)

    # -- references ------------------------------------------------------------------------

    def state_ref(self, name: str, path: Path) -> bool:
        if name in self.d.states:
            return True
        if self.unknown("states"):
            return False
        self.add(
            "XS101",
            "unknown-state",
            f"unknown state {name!r}" + suggest(name, self.d.states),
            path,
        )
        return False

    def role_ref(self, role: str, roles: set[str], path: Path) -> bool:
        """Whether ``role`` is one of ``roles``; an XS110 problem at ``path`` when not."""
        if role in roles:
            return True
        if self.unknown("roles"):
            return False
        self.add("XS110", "unknown-role", f"unknown role {role!r}" + suggest(role, roles), path)
        return False

    def workflow_ref(self, workflow: str, what: str, path: Path) -> bool:
        """Whether a spawn or fire_on may name ``workflow``; an XS118 problem when not."""
        if self.known_workflows is None or workflow in self.known_workflows:
            return True
        self.add(
            "XS118",
            "unknown-workflow",
            f"{what} names unknown workflow {workflow!r}" + suggest(workflow, self.known_workflows),
            path,
        )
        return False

    # -- expressions -----------------------------------------------------------------------

    def names(self, t: TransitionSpec, *extra: str) -> tuple[list[str], dict[str, Any]]:
        names = [
            "data",
            "payload",
            "actor",
            "instance",
            "params",
            "now",
            "children",
            "siblings",
            *extra,
        ]
        members: dict[str, Any] = {
            "data": self.declared("data"),
            "payload": None if self.unknown(*self.path_of(t), "payload") else set(t.payload),
            "actor": ACTOR_FIELDS,
            "instance": INSTANCE_FIELDS,
            "params": self.declared("params"),
            PARENT: PARENT_FIELDS,
        }
        return names, members

    def guard_names(self, t: TransitionSpec) -> tuple[list[str], dict[str, Any]]:
        """The names of a guard and its message: a transition's, and the ``parent``."""
        names, members = self.names(t)
        return [*names, PARENT], members

    def declared(self, section: str) -> set[str] | None:
        """The names ``data`` or ``params`` declare; None (any) when the section is unknown."""
        if self.unknown(section):
            return None
        return set(self.d.data if section == "data" else self.d.params)

    def path_of(self, t: TransitionSpec) -> Path:
        return ("transitions", next(i for i, u in enumerate(self.d.transitions) if u is t))

    def expr(
        self,
        source: str,
        path: Path,
        names: list[str],
        members: dict[str, Any],
        *,
        lookup: bool = False,
    ) -> Compiled | None:
        try:
            compiled = compile_expression(source, names=names, members=members, lookup=lookup)
        except ExpressionError as e:
            self.add(e.code, e.name, e.message, path)
            return None
        check_types(self, source, path)
        return compiled

    def placeholders(
        self,
        label: Label,
        path: Path,
        names: list[str],
        members: dict[str, Any],
        *,
        lookup: bool = False,
    ) -> tuple[tuple[str, Compiled], ...]:
        """The ``{expression}`` placeholders of a message, compiled (a problem for each bad one)."""
        parts: list[tuple[str, Compiled]] = []
        for lang in ("zh", "en"):
            for source in _PLACEHOLDER.findall(getattr(label, lang) or ""):
                compiled = self.expr(source, (*path, lang), names, members, lookup=lookup)
                if compiled is not None:
                    parts.append((source, compiled))
        return tuple(parts)

    def access_expr(self, source: str, path: Path) -> Compiled | None:
        members = {
            "data": self.declared("data"),
            "params": self.declared("params"),
            "instance": INSTANCE_FIELDS,
        }
        return self.expr(source, path, ["data", "params", "instance"], members)


def param_problem(spec: ParamSpec, value: Any) -> str | None:
    kind = spec.type
    if kind == "duration":
        if not isinstance(value, str):
            return "a duration is text such as '5 working days'"
        try:
            parse_duration(value)
        except CalendarError as e:
            return e.message
        return None
    if kind == "list":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return "expected a list of strings"
        items = value
    else:
        ok = {
            "int": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "string": isinstance(value, str),
            "bool": isinstance(value, bool),
        }[kind]
        if not ok:
            return f"expected a {kind}"
        items = [value] if kind == "string" else []
    if spec.values is not None:
        if kind not in ("string", "list"):
            return f"'values' is only for string and list params, not {kind}"
        bad = [v for v in items if v not in spec.values]
        if bad:
            return f"{', '.join(map(repr, bad))} not one of {', '.join(spec.values)}"
    if spec.minimum is not None and kind in ("int", "number") and value < spec.minimum:
        return f"must be at least {spec.minimum:g}"
    return None
