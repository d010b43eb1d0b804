"""A transition of the definition model, with what a step may do besides moving the state:
spawn children, join them, update or fire on other instances, soft rules, separation of duties.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator

from .fields import FieldSpec, Ident, Label, _label_from_str, _Model

__all__ = [
    "CascadeSpec",
    "ChildFireSpec",
    "FireOnSpec",
    "JoinSpec",
    "NotBySpec",
    "SpawnSpec",
    "TransitionSpec",
    "UpdateSpec",
    "WarnSpec",
]


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
