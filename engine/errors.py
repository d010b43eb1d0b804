"""The errors xieshang raises: one root, each error keeping the offending values.

The tree::

    XieshangError
    ├── DefinitionError          a workflow file (or set of files) is invalid; .problems lists all
    ├── DutiesFileError          a duty rules file is invalid; .problems lists all
    ├── CalendarError            a date the calendar cannot answer for, a bad duration
    │   ├── CalendarFileError    a deployment calendar file is invalid; .problems lists all
    │   └── FunctionFailed       a date function in an expression failed (its name and arguments)
    ├── SettingsError            a deployment setting (environment, settings file) is invalid
    ├── Usage                    a call or command line is wrong: a bad argument or option
    ├── NotFound                 no such instance / workflow / definition hash
    ├── CommandRefused           a command was refused; nothing was changed or emitted
    │   ├── UnknownTrigger       the definition has no such trigger
    │   ├── TransitionNotAllowed the trigger exists, but not from this state, or its guard is false
    │   ├── Forbidden            the actor has no allowed role, or separation of duties forbids it
    │   └── InvalidPayload       the payload (or start data) does not match its schema
    ├── ConcurrencyConflict      another command changed the instance first; .case says how
    ├── StoreError               the store refused an operation (not a version conflict)
    │   └── StoreUnavailable     the store cannot be reached, or stayed locked; try again
    └── DeliveryFailed           an event sink could not deliver an event; .retryable says if later

Every error carries a stable ``code`` and renders to a dict (``to_dict``) so that the CLI and the
HTTP API show the same facts: what was refused and what would have been allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "CalendarError",
    "CalendarFileError",
    "CommandRefused",
    "ConcurrencyConflict",
    "ConflictCase",
    "DefinitionError",
    "DeliveryFailed",
    "DutiesFileError",
    "Forbidden",
    "FunctionFailed",
    "InvalidPayload",
    "NotFound",
    "Problem",
    "SettingsError",
    "StoreError",
    "StoreUnavailable",
    "TransitionNotAllowed",
    "UnknownTrigger",
    "Usage",
    "XieshangError",
]


class XieshangError(Exception):
    """Root of every error the public API raises."""

    code = "xieshang-error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}


def _invalid(what: str, errors: list[dict[str, Any]]) -> str:
    return f"invalid {what}: " + "; ".join(f"{e['field']}: {e['error']}" for e in errors)


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found in a workflow file, with its stable code and its place in the file."""

    code: str  # e.g. "XS101"
    name: str  # e.g. "unknown-state"
    message: str
    path: str = ""  # e.g. "transitions[3].to"
    file: str = ""
    line: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __str__(self) -> str:
        where = self.file or "<definition>"
        if self.line is not None:
            where += f":{self.line}"
        path = f"{self.path}: " if self.path else ""
        return f"{where}: {self.code} {path}{self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "message": self.message,
            "path": self.path,
            "file": self.file,
            "line": self.line,
        }


class DefinitionError(XieshangError):
    """A workflow definition is invalid. ``problems`` lists every problem found, in file order."""

    code = "definition-invalid"

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line or 0, p.path, p.code))
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in workflow definition"
        body = "\n".join(str(p) for p in self.problems)
        super().__init__(f"{head}:\n{body}", problems=[p.to_dict() for p in self.problems])


class DutiesFileError(XieshangError):
    """A duty rules file is invalid. ``problems`` lists every problem found, in file order."""

    code = "duties-file-invalid"

    def __init__(self, problems: list[Problem], *, file: str = "") -> None:
        self.problems = sorted(problems, key=lambda p: (p.line or 0, p.path, p.code))
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in duty rules file {file}".rstrip()
        body = "\n".join(str(p) for p in self.problems)
        super().__init__(f"{head}:\n{body}", problems=[p.to_dict() for p in self.problems])


class CalendarError(XieshangError):
    """A date the calendar cannot answer for, or a duration it cannot read."""

    code = "calendar-error"


class CalendarFileError(CalendarError):
    """A calendar file is invalid. ``problems`` lists every problem found, in file order."""

    code = "calendar-file-invalid"

    def __init__(self, problems: list[Problem], *, file: str = "") -> None:
        self.problems = sorted(problems, key=lambda p: (p.line or 0, p.path, p.code))
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in calendar file {file or ''}".rstrip()
        body = "\n".join(str(p) for p in self.problems)
        super().__init__(f"{head}:\n{body}", problems=[p.to_dict() for p in self.problems])


class FunctionFailed(CalendarError):
    """A domain function inside an expression failed: ``function``, ``arguments``, ``reason``."""

    code = "function-failed"

    def __init__(self, function: str, arguments: list[Any], reason: str) -> None:
        shown = ", ".join(repr(a) for a in arguments)
        super().__init__(
            f"{function}({shown}) failed: {reason}",
            function=function,
            arguments=[str(a) for a in arguments],
            reason=reason,
        )
        self.function = function
        self.arguments = arguments
        self.reason = reason


class SettingsError(XieshangError):
    """A deployment setting is invalid; ``errors`` lists each offending setting."""

    code = "settings-invalid"

    def __init__(self, what: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(_invalid(what, errors), what=what, errors=errors)
        self.errors = errors


class Usage(XieshangError):
    """A call or a command line is wrong (the CLI exits 2); ``option`` names the culprit, if one."""

    code = "usage"

    def __init__(self, message: str, option: str | None = None, **details: Any) -> None:
        if option is not None:
            details["option"] = option
        super().__init__(message, **details)
        self.option = option


class NotFound(XieshangError):
    """No such instance, workflow or definition."""

    code = "not-found"

    def __init__(self, kind: str, key: str, *, allowed: list[str] | None = None) -> None:
        msg = f"no {kind} {key!r}"
        if allowed is not None:
            shown = ", ".join(allowed[:20]) + (" ..." if len(allowed) > 20 else "")
            msg += f"; known: {shown or 'none'}"
        details: dict[str, Any] = {"kind": kind, "key": key}
        if allowed is not None:
            details["allowed"] = allowed
        super().__init__(msg, **details)
        self.kind = kind
        self.key = key


class CommandRefused(XieshangError):
    """A command was refused. Nothing was written and nothing was emitted."""

    code = "command-refused"


class UnknownTrigger(CommandRefused):
    """The instance's definition has no such trigger."""

    code = "unknown-trigger"

    def __init__(self, workflow: str, trigger: str, allowed: list[str]) -> None:
        super().__init__(
            f"workflow {workflow!r} has no trigger {trigger!r}; its triggers: {', '.join(allowed)}",
            workflow=workflow,
            trigger=trigger,
            allowed=allowed,
        )
        self.trigger = trigger
        self.allowed = allowed


class TransitionNotAllowed(CommandRefused):
    """The trigger exists, but not from the current state, or its guard refused it."""

    code = "transition-not-allowed"

    def __init__(
        self,
        message: str,
        *,
        trigger: str,
        state: str,
        allowed: list[str],
        guard: str | None = None,
        **details: Any,
    ) -> None:
        super().__init__(
            message, trigger=trigger, state=state, allowed=allowed, guard=guard, **details
        )
        self.trigger = trigger
        self.state = state
        self.allowed = allowed
        self.guard = guard


class Forbidden(CommandRefused):
    """The actor may not fire this trigger: no allowed role, wrong unit, or separation of duties."""

    code = "forbidden"

    def __init__(
        self, message: str, *, trigger: str, actor: str, allowed: list[str], **details: Any
    ) -> None:
        super().__init__(message, trigger=trigger, actor=actor, allowed=allowed, **details)
        self.trigger = trigger
        self.actor = actor
        self.allowed = allowed


class InvalidPayload(CommandRefused):
    """The payload or start data does not match its schema; ``errors`` lists every field error."""

    code = "invalid-payload"

    def __init__(self, what: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(_invalid(what, errors), what=what, errors=errors)
        self.errors = errors


class ConflictCase(StrEnum):
    """Which race a :class:`ConcurrencyConflict` lost."""

    STALE_VERSION = "stale-version"  # the caller's expected version is not the stored one
    ANOTHER_WRITER = "another-writer"  # the row changed between the read and the write
    INSTANCE_EXISTS = "instance-exists"  # an instance with this id was stored first
    COMMAND_USED = "command-used"  # the command id was used before, by another step
    TIMER_TAKEN = "timer-taken"  # another worker fired the timer first
    CHILDREN_CHANGED = "children-changed"  # a sibling's step moved the parent's children first
    RETRIES_EXHAUSTED = "retries-exhausted"  # the instance kept changing under the command


def _conflict_message(
    case: ConflictCase,
    instance_id: str,
    expected: int | None,
    actual: int | None,
    differs: str | None = None,
) -> str:
    now = f" (now at version {actual})" if actual is not None else ""
    moved = (
        f" (version {expected} became {actual})"
        if expected is not None and actual is not None
        else now
    )
    if case is ConflictCase.STALE_VERSION:
        wanted = f"the expected {expected}" if expected is not None else "the version expected"
        where = f"is at version {actual}" if actual is not None else "no longer exists"
        return f"instance {instance_id!r} {where}, not {wanted}"
    if case is ConflictCase.ANOTHER_WRITER:
        return f"another writer changed instance {instance_id!r} first{moved}"
    if case is ConflictCase.INSTANCE_EXISTS:
        return f"instance {instance_id!r} already exists{now}"
    if case is ConflictCase.COMMAND_USED:
        step = f" for step {actual}" if actual is not None else ""
        other = f", a command with another {differs}" if differs is not None else ""
        return f"the command id was already used{step} of instance {instance_id!r}{other}"
    if case is ConflictCase.TIMER_TAKEN:
        return f"another worker fired the timer of instance {instance_id!r} first"
    if case is ConflictCase.CHILDREN_CHANGED:
        return (
            f"a step of another child changed the children of instance {instance_id!r} first"
            f"{moved.replace('version', 'count')}"
        )
    return f"instance {instance_id!r} kept changing under the command; gave up retrying{now}"


class ConcurrencyConflict(XieshangError):
    """Another command changed the instance first; re-read it and try again.

    Attributes:
        instance_id: the instance the race was about.
        expected: the version (or children count) the writer expected, if it expected one.
        actual: the stored version (or, for :attr:`ConflictCase.COMMAND_USED`, the step number
            the command id made), if known.
        case: which race was lost (a :class:`ConflictCase`).
        differs: for a command id used before, what of the first command differs from this one
            (``instance``, ``workflow``, ``org``, ``trigger``, ``payload`` or ``reason``), if known.
    """

    code = "concurrency-conflict"

    def __init__(
        self,
        instance_id: str,
        expected: int | None = None,
        actual: int | None = None,
        *,
        case: ConflictCase = ConflictCase.STALE_VERSION,
        differs: str | None = None,
    ) -> None:
        more = {"differs": differs} if differs is not None else {}
        super().__init__(
            _conflict_message(case, instance_id, expected, actual, differs),
            instance_id=instance_id,
            expected=expected,
            actual=actual,
            case=case.value,
            **more,
        )
        self.instance_id = instance_id
        self.expected = expected
        self.actual = actual
        self.case = case
        self.differs = differs


class StoreError(XieshangError):
    """The store refused an operation for a reason that is not a version conflict."""

    code = "store-error"


class StoreUnavailable(StoreError):
    """The store cannot be reached, or stayed locked past the busy timeout; try again."""

    code = "store-unavailable"


class DeliveryFailed(XieshangError):
    """A sink could not deliver an event.

    Attributes:
        retryable: True when trying again later may succeed (a timeout, a 503, a refused
            connection); False when it never will (a 400, a 404): the event is dead-lettered.
        reason: what went wrong, for the ``deliveries.last_error`` column and the CLI.
        retry_after: seconds the receiver asked us to wait (an HTTP ``Retry-After``), if any.
    """

    code = "delivery-failed"

    def __init__(self, retryable: bool, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason, retryable=retryable, retry_after=retry_after)
        self.retryable = retryable
        self.reason = reason
        self.retry_after = retry_after
