"""The workflow definition: the typed, frozen model that a workflow YAML file is read into.

A definition is data. This module only describes its shape (pydantic v2, ``extra="forbid"``);
the static checks that need the whole graph live in :mod:`xieshang.checks`, expressions in
:mod:`xieshang.expressions`, and the pipeline from text to a compiled machine in
:mod:`xieshang.loading`.
"""

from __future__ import annotations

import hashlib
import re
from functools import cached_property
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from .records import canonical_json
from .shape_errors import shape_error

__all__ = [
    "CascadeSpec",
    "ChildFireSpec",
    "Definition",
    "FieldSpec",
    "FireOnSpec",
    "JoinSpec",
    "Label",
    "NotBySpec",
    "ParamSpec",
    "ReadRule",
    "ReadSpec",
    "SpawnSpec",
    "StartSpec",
    "StateSpec",
    "TimerSpec",
    "TransitionSpec",
    "UpdateSpec",
    "WarnSpec",
]

IDENT = r"^[a-z][a-z0-9_]*$"
Ident = Annotated[str, Field(pattern=IDENT, max_length=64)]
FieldType = Literal[
    "string", "text", "int", "number", "bool", "enum", "date", "datetime", "list", "object"
]
ParamType = Literal["int", "number", "string", "bool", "duration", "list"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Label(_Model):
    """A text shown to people: Chinese first, English optional."""

    zh: str = Field(min_length=1, max_length=500)
    en: str | None = Field(default=None, max_length=500)


def _label_from_str(value: Any) -> Any:
    return {"zh": value} if isinstance(value, str) else value


class FieldSpec(_Model):
    """A typed field of instance data or of a transition's payload."""

    type: FieldType
    required: bool = False
    label: Label | None = None
    values: tuple[str, ...] | None = Field(default=None, description="allowed values of an enum")
    items: FieldType | None = Field(default=None, description="type of the elements of a list")
    item_values: tuple[str, ...] | None = Field(
        default=None, description="allowed values when the elements of a list are enums"
    )
    max_length: int | None = Field(default=None, ge=1)
    min_length: int | None = Field(default=None, ge=0)
    minimum: float | None = None
    maximum: float | None = None
    default: Any = None
    public: bool = Field(default=False, description="included in the data of emitted events")

    _norm_label = field_validator("label", mode="before")(_label_from_str)

    @model_validator(mode="after")
    def _consistent(self) -> FieldSpec:
        if self.type == "enum" and not self.values:
            raise ValueError("an enum field needs 'values'")
        if self.type != "enum" and self.values is not None:
            raise ValueError(f"'values' is only for enum fields, not {self.type}")
        if self.type != "list" and (self.items is not None or self.item_values is not None):
            raise ValueError(f"'items' is only for list fields, not {self.type}")
        if self.items == "enum" and not self.item_values:
            raise ValueError("a list of enums needs 'item_values'")
        return self


class ParamSpec(_Model):
    """A number that differs from place to place, with its default (overridable per deployment)."""

    type: ParamType
    default: Any
    minimum: float | None = Field(
        default=None, description="the smallest value an int or number param may take"
    )
    label: Label | None = None
    description: str | None = None
    values: tuple[str, ...] | None = Field(
        default=None,
        description="the values a string param may take, or the elements of a list param",
    )

    _norm_label = field_validator("label", mode="before")(_label_from_str)

    @model_validator(mode="after")
    def _minimum_of_a_number(self) -> ParamSpec:
        if self.minimum is not None and self.type not in ("int", "number"):
            raise ValueError(f"'minimum' is only for int and number params, not {self.type}")
        return self


class DeadlineSpec(_Model):
    """When an instance in a state becomes overdue: ``after`` entering it, or ``at`` a date.

    ``at`` is a CEL expression giving a date (e.g. ``data.reply_due``); it is evaluated again
    after every step, so a transition that moves the date (an approved extension) moves the
    deadline.
    """

    after: str | None = Field(
        default=None, description="a duration ('3 months', '5 working days') or 'params.NAME'"
    )
    at: str | None = Field(default=None, description="CEL expression giving the due date")
    roll: Literal["none", "next_workday"] = "none"
    remind_before: str | None = Field(
        default=None, description="emit a reminder this long before the deadline"
    )

    @model_validator(mode="after")
    def _one_of(self) -> DeadlineSpec:
        if (self.after is None) == (self.at is None):
            raise ValueError("a deadline needs exactly one of 'after' and 'at'")
        return self


class StateSpec(_Model):
    """A state of the workflow."""

    label: Label
    initial: bool = False
    final: bool = False
    description: str | None = None
    deadline: DeadlineSpec | None = None

    _norm_label = field_validator("label", mode="before")(_label_from_str)


class SpawnSpec(_Model):
    """Start one child instance per element of a list, in the same transaction as the step."""

    workflow: Ident
    for_each: str = Field(description="CEL expression giving the list, e.g. payload.units")
    data: dict[str, str] = Field(
        default_factory=dict, description="child data: field -> CEL over `item` and the parent"
    )
    bind: str | None = Field(
        default=None, description="CEL expression giving the unit the child is bound to"
    )
    sibling: bool = Field(
        default=False, description="start the children under this instance's parent (replacement)"
    )
    id: str | None = Field(
        default=None,
        description="CEL expression giving each child's id (default: a new id), so that the "
        "parent can record it with the same expression (e.g. instance.id + '.opinion_report')",
    )


class FireOnSpec(_Model):
    """Fire a trigger on another instance, named by id, in the same transaction as the step.

    It fires as the ``system`` actor; when that instance refuses (not in a state the trigger
    leaves, a guard, a payload), the whole step is refused and nothing is written.
    """

    instance: str = Field(description="CEL expression giving the id, e.g. payload.main_id")
    workflow: Ident = Field(description="the workflow that instance must be an instance of")
    trigger: Ident
    payload: dict[str, str] = Field(
        default_factory=dict,
        description="payload field -> CEL over this instance as after the step",
    )
    message: Label | None = Field(
        default=None, description="what a refusal by that instance says first"
    )

    _norm_label = field_validator("message", mode="before")(_label_from_str)


class UpdateSpec(_Model):
    """After the step, set data fields on another instance of the same org, named by id (a key
    proposal's supervision writes its outcome back to the proposal): one ``linked_update``
    history row on it, in the same transaction as the step."""

    instance: str = Field(
        description="CEL over this instance's new data, the payload and actor giving the id "
        "of the instance to update (null: no update)"
    )
    workflow: Ident = Field(description="the workflow that instance must be of")
    set: dict[str, str] = Field(
        min_length=1, description="its data field -> CEL over this instance's new data"
    )


class JoinSpec(_Model):
    """Fire this transition automatically (as ``system``) once the children satisfy a condition.

    Checked in the same transaction as every child step. ``ignore`` lists child states that do
    not count (a released unit's ``reassigned``); the transition's guard may add conditions over
    ``children``.
    """

    when: Literal["all_final", "all_in", "count"] = "all_final"
    states: tuple[str, ...] = ()
    count: int | None = Field(default=None, ge=1)
    ignore: tuple[str, ...] = ()


class WarnSpec(_Model):
    """A soft rule of a transition: when ``when`` holds, the step still happens and its history
    row records the warning ``code`` with its message; ``mode`` may make it a refusal instead.

    ``when`` is CEL over ``data``, ``payload``, ``actor``, ``instance``, ``params`` and ``now``
    (not ``children``: a replay must give the same warnings); the message may hold
    ``{expression}`` placeholders like a guard's.
    """

    code: Ident = Field(description="the warning's stable code, unique within the transition")
    when: str = Field(description="CEL condition that, when true, raises the warning")
    message: Label
    mode: str = Field(
        default="warn",
        description="'warn' (the step happens, the warning is recorded), 'refuse' (the step is "
        "refused with this code and message), or 'params.NAME': a string param whose value, "
        "warn or refuse, each deployment chooses",
    )

    _norm_label = field_validator("message", mode="before")(_label_from_str)


class ChildFireSpec(_Model):
    """Fire ``trigger`` on each child of ``workflow`` for which ``when`` holds, as the system
    actor, in the same commit as this step: each child gets its own checked step and history
    row, and a child that refuses refuses the whole step."""

    workflow: Ident = Field(description="the workflow of the children to fire on")
    trigger: Ident = Field(description="a trigger of that workflow that allows the system role")
    when: str = Field(
        default="true",
        description="CEL over `child` (id, workflow, state, unit, final, data) and this "
        "instance's new data, e.g. child.data.topic_id in data.revision_cancelled",
    )
    payload: dict[str, str] = Field(
        default_factory=dict,
        description="the child step's payload: field -> CEL over `child` and this instance",
    )


class NotBySpec(_Model):
    """Separation of duties with a scope: ``ever`` (whoever fired one of ``triggers`` on this
    instance at any time) or ``last`` (the actor of the most recent step with one of them)."""

    triggers: tuple[str, ...] = Field(
        min_length=1, description="the triggers whose actor is barred"
    )
    scope: Literal["ever", "last"] = Field(
        default="ever",
        description="ever: anyone who ever fired one of them here; last: the actor of the most "
        "recent such step (a report redrafted by another may be approved by the first drafter)",
    )


class CascadeSpec(_Model):
    """When the step ends the instance (its target is final), fire ``trigger`` on each of its
    open children as the system actor, in the same commit: each child one step of its own. A
    child that cannot take it is left as it is, and the step's row records it (warning
    ``cascade_skipped``)."""

    trigger: Ident = Field(description="the children's trigger, one the system role may fire")
    workflow: Ident | None = Field(
        default=None,
        description="only the children of this workflow (default: every open child; the "
        "workflows this one spawns are checked when they load together)",
    )


def _not_by_form(value: Any) -> str:
    return "not_by[rule]" if isinstance(value, dict | NotBySpec) else "not_by[list]"


# a list, or a rule: the tag (a name with brackets, which a problem's path leaves out) makes a
# bad rule one problem at its place rather than one per form
_NotBy = Annotated[
    Annotated[tuple[str, ...], Tag("not_by[list]")] | Annotated[NotBySpec, Tag("not_by[rule]")],
    Discriminator(_not_by_form),
]


class TransitionSpec(_Model):
    """A step: ``trigger`` moves an instance from one of ``from`` to ``to``."""

    trigger: Ident
    from_: tuple[str, ...] = Field(alias="from", min_length=1)
    to: str
    label: Label | None = None
    roles: tuple[str, ...] = Field(
        default=(), description="roles that may fire it; 'system' for timers"
    )
    payload: dict[str, FieldSpec] = Field(default_factory=dict)
    guard: str | None = Field(default=None, description="CEL expression that must be true")
    guard_message: Label | None = None
    set: dict[str, str] = Field(default_factory=dict, description="data field -> CEL expression")
    reason_required: bool = False
    visibility: Literal["public", "internal"] = "public"
    not_by: _NotBy = Field(
        default=(),
        description="separation of duties: triggers whose actor may not fire this one (a list: "
        "whoever ever fired them here), or {triggers, scope: ever | last}",
    )
    emits: tuple[str, ...] = Field(default=(), description="event names, e.g. proposal.assigned")
    spawn: SpawnSpec | None = None
    join: JoinSpec | None = None
    children_set: dict[str, str] = Field(
        default_factory=dict,
        description="after the step, set these data fields (child field -> CEL over this "
        "instance's new data) on every open child, each change one history row of the child "
        "(an approved extension moves the handling units' due date)",
    )
    update: UpdateSpec | None = None
    fire_on: FireOnSpec | None = None
    children_fire: tuple[ChildFireSpec, ...] = Field(
        default=(),
        description="after the step, fire a trigger on the matching children, each one step "
        "of its own in this commit (an approved revision cancels the plan's topics)",
    )
    warn: tuple[WarnSpec, ...] = Field(
        default=(), description="soft rules: checked after the guard, recorded when they hold"
    )
    cascade: tuple[CascadeSpec, ...] = Field(
        default=(),
        description="only on a transition to a final state: fire a trigger on every open child "
        "(one entry, or a list of them, one per child workflow), e.g. {trigger: "
        "cancel_by_parent}",
    )

    _norm_label = field_validator("label", "guard_message", mode="before")(_label_from_str)

    @property
    def not_by_triggers(self) -> tuple[str, ...]:
        """The triggers of the separation-of-duties rule, in either form."""
        return self.not_by.triggers if isinstance(self.not_by, NotBySpec) else self.not_by

    @property
    def not_by_scope(self) -> Literal["ever", "last"]:
        """``ever`` (the list form) or the scope the rule names."""
        return self.not_by.scope if isinstance(self.not_by, NotBySpec) else "ever"

    @field_validator("from_", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("cascade", mode="before")
    @classmethod
    def _one_entry_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, dict) else value


class TimerSpec(_Model):
    """In state ``in``, after a duration, fire ``fire`` as the system actor."""

    in_: str = Field(alias="in")
    after: str = Field(description="a duration ('3 months', '5 working days') or 'params.NAME'")
    fire: str
    roll: Literal["none", "next_workday"] = "none"


class ReadRule(_Model):
    """Who a read grant is for (one or more of ``roles``, ``units``, ``named``, ``anyone``), and
    when it holds (``states``, ``not_states``, ``when``). Evaluated after every step."""

    roles: tuple[str, ...] = Field(default=(), description="actors holding one of these roles")
    units: tuple[str, ...] = Field(
        default=(),
        description="bound roles: an actor of one of them acting for a unit the instance is "
        "bound to for that role",
    )
    named: tuple[str, ...] = Field(
        default=(),
        description="CEL over data, instance and params giving actor ids (a string or a list), "
        "e.g. data.first_proposer",
    )
    anyone: bool = Field(default=False, description="every actor of the instance's org")
    states: tuple[str, ...] = Field(default=(), description="only in these states (empty: any)")
    not_states: tuple[str, ...] = Field(default=(), description="never in these states")
    when: str | None = Field(
        default=None, description="CEL over data, instance and params that must be true"
    )


class ReadSpec(_Model):
    """Who may read an instance, in three levels, each also granting the ones before it:
    ``see`` (the instance, its public fields and public history rows without payloads of
    non-public fields), ``data`` (all its data and full public rows), ``internal`` (internal
    history rows too). A level left out grants nothing of its own (see docs/access.md)."""

    see: tuple[ReadRule, ...] | None = None
    data: tuple[ReadRule, ...] | None = None
    internal: tuple[ReadRule, ...] | None = None


class StartSpec(_Model):
    """Who may start an instance, what must hold of its data, and what its start announces."""

    roles: tuple[str, ...] = Field(default=(), description="roles that may start; empty: any")
    emits: tuple[str, ...] = ()
    guard: str | None = Field(
        default=None,
        description="CEL over data (as validated, defaults filled), params, actor and now that "
        "must be true for a start command",
    )
    guard_message: Label | None = None

    _norm_label = field_validator("guard_message", mode="before")(_label_from_str)


class Definition(_Model):
    """One workflow type, as a process owner writes it in YAML."""

    # (no docstring on the class beyond its first line: it becomes the JSON Schema's description)

    def __init__(self, /, **data: Any) -> None:
        """Check the shape only; :func:`xieshang.load_definition` also checks graph and guards.

        ``model_validate`` and ``model_validate_json`` raise the same way.

        Raises:
            DefinitionError: one problem (``XS010 schema``) per offending place, with its path.
        """
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise shape_error(e) from e

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as e:
            raise shape_error(e) from e

    @classmethod
    def model_validate_json(cls, json_data: Any, *args: Any, **kwargs: Any) -> Self:
        try:
            return super().model_validate_json(json_data, *args, **kwargs)
        except ValidationError as e:
            raise shape_error(e) from e

    id: Ident
    version: int = Field(ge=1, strict=True)
    title: Label
    description: str | None = None
    calendar: Literal["cn_official", "weekdays"] = "cn_official"
    roles: dict[str, Label] = Field(default_factory=dict)
    bound_roles: tuple[str, ...] | dict[str, tuple[str, ...]] = Field(
        default=(),
        description="roles that act only for the units an instance names: a list of roles "
        "(bound to the instance's own unit), or role -> CEL expressions over data, instance and "
        "params each giving a unit id or a list of them (e.g. [data.units, data.lead_unit])",
    )
    start: StartSpec = Field(default_factory=StartSpec)
    data: dict[str, FieldSpec] = Field(default_factory=dict)
    params: dict[str, ParamSpec] = Field(default_factory=dict)
    states: dict[str, StateSpec]
    transitions: tuple[TransitionSpec, ...] = ()
    timers: tuple[TimerSpec, ...] = ()
    read: ReadSpec | None = None

    _norm_label = field_validator("title", mode="before")(_label_from_str)

    @field_validator("roles", mode="before")
    @classmethod
    def _role_labels(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: _label_from_str(v) for k, v in value.items()}
        return value

    @field_validator("roles", "data", "params", "states")
    @classmethod
    def _ident_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k in value if not re.match(IDENT, k)]
        if bad:
            raise ValueError(f"names must be lower_snake_case identifiers, not {bad}")
        return value

    def to_json(self) -> dict[str, Any]:
        """The definition as plain JSON data, with the YAML spellings (``from``, ``in``)."""
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=True)

    @cached_property
    def content_hash(self) -> str:
        """sha256 of the canonical JSON form: what running instances pin."""
        return hashlib.sha256(canonical_json(self.to_json()).encode()).hexdigest()

    @property
    def initial_state(self) -> str:
        return next(name for name, s in self.states.items() if s.initial)

    @property
    def final_states(self) -> frozenset[str]:
        return frozenset(name for name, s in self.states.items() if s.final)

    @property
    def bound_units(self) -> dict[str, tuple[str, ...] | None]:
        """Each bound role and the CEL sources of its units; None: the instance's own unit."""
        if isinstance(self.bound_roles, dict):
            return dict(self.bound_roles)
        return dict.fromkeys(self.bound_roles)

    def triggers(self) -> list[str]:
        return list(dict.fromkeys(t.trigger for t in self.transitions))
