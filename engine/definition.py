"""The workflow definition: the typed, frozen model that a workflow YAML file is read into.

A definition is data. This module describes its top level, states, timers and read rules
(pydantic v2, ``extra="forbid"``); fields, labels and params are in :mod:`xieshang.fields`,
transitions in :mod:`xieshang.transition_spec` (all importable from here). The format's
factoring (named types, role groups, ``let``, ``branches``) is expanded before this model sees
a file (:mod:`xieshang.factoring`); the static checks that need the whole graph live in
:mod:`xieshang.loading`, expressions in :mod:`xieshang.expressions`.
"""

from __future__ import annotations

import hashlib
import re
from functools import cached_property
from typing import Any, Literal, Self

from pydantic import Field, ValidationError, field_validator, model_validator

from .errors import DefinitionError
from .factoring import expand, is_factored
from .fields import (
    IDENT,
    FieldSpec,
    FieldType,
    Ident,
    Label,
    ParamSpec,
    ParamType,
    _label_from_str,
    _Model,
)
from .records import canonical_json
from .shape_errors import shape_error
from .transition_spec import (
    CascadeSpec,
    ChildFireSpec,
    FireOnSpec,
    JoinSpec,
    NotBySpec,
    SpawnSpec,
    TransitionSpec,
    UpdateSpec,
    WarnSpec,
)
from .yamlsafe import Located

__all__ = [
    "IDENT",
    "CascadeSpec",
    "ChildFireSpec",
    "Definition",
    "FieldSpec",
    "FieldType",
    "FireOnSpec",
    "Ident",
    "JoinSpec",
    "Label",
    "NotBySpec",
    "ParamSpec",
    "ParamType",
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

    @model_validator(mode="before")
    @classmethod
    def _plain(cls, value: Any) -> Any:
        """Data written with the factoring (types, role groups, let, branches): its plain form."""
        if not is_factored(value):
            return value
        expansion = expand(Located(value, {}, ""))
        if expansion.problems:
            raise DefinitionError(expansion.problems)
        return expansion.data

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
