"""Guards and effects: CEL expressions compiled once at load time (the date functions they may
call are in :mod:`.date_functions`).

An expression may read only the names of its place (``data``, ``payload``, ``actor``,
``instance``, ``params``, ``now``, and ``item`` / ``children`` where those exist); an unknown
name, field, parameter or function is found when the definition loads, not when it runs.
Dates in instance data are ISO strings (``'2024-10-10'``); ``now`` is a timestamp.

A guard, its message and a soft rule may read ``parent`` (a child's parent as stored when the
step runs, null for an instance without one). A guard (and its message) may also call
``lookup(id)``: another instance of the same org, read when the guard runs (see
:data:`LOOKUP`). Neither anywhere else, since every other expression is
evaluated again from the instance's own history (replay, read rules, deadlines).
"""

from __future__ import annotations

import contextvars
import difflib
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cel

from .errors import FunctionFailed, XieshangError
from .native import Activation, Native, compile_native, plain

if TYPE_CHECKING:
    from .records import Instance

__all__ = [
    "ACTOR_FIELDS",
    "BUILTIN_FUNCTIONS",
    "INSTANCE_FIELDS",
    "LOOKUP",
    "PARENT",
    "PARENT_FIELDS",
    "Activation",
    "Compiled",
    "ExpressionError",
    "activation",
    "compile_expression",
    "guarded",
    "instance_view",
    "merge_needs",
    "new_context",
    "references",
]

ACTOR_FIELDS = frozenset({"id", "roles", "org", "unit"})
# parent: a child's parent instance, read when the step runs (null for an instance without one)
PARENT = "parent"
PARENT_FIELDS = frozenset(
    {"id", "workflow", "state", "final", "unit", "data", "parent_id", "created_at"}
)
INSTANCE_FIELDS = frozenset(
    {"id", "workflow", "state", "version", "org", "created_at", "parent_id", "unit", "entered_at"}
)
DOMAIN_FUNCTIONS = frozenset(
    {
        "add_workdays",
        "workdays_before",
        "add_months",
        "workdays_between",
        "date",
        "due_date",
        "days_between",
        "length",
        "year",
    }
)
# lookup(id): the instance ``id`` of the same org as {id, workflow, state, final, unit,
# parent_id, created_at, data}, or null when the org has none; bound per step (context.py)
LOOKUP = "lookup"
BUILTIN_FUNCTIONS = (
    frozenset(
        {
            "size",
            "int",
            "uint",
            "double",
            "string",
            "bytes",
            "bool",
            "timestamp",
            "duration",
            "contains",
            "startsWith",
            "endsWith",
            "matches",
            "dyn",
            "type",
            "has",
            "getFullYear",
            "getMonth",
            "getDate",
            "getDayOfMonth",
            "getDayOfWeek",
            "getDayOfYear",
            "getHours",
            "getMinutes",
            "getSeconds",
            "getMilliseconds",
            "lowerAscii",
            "upperAscii",
            "trim",
            "split",
            "join",
            "replace",
            "indexOf",
        }
    )
    | DOMAIN_FUNCTIONS
)

_MACRO_VAR = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_STRING = re.compile(r"'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"", re.S)
_MEMBER = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\s*\.\s*([A-Za-z_]\w*)(?!\s*\()")


_COMMENT = re.compile(r"//[^\n]*")


def _strip(source: str) -> str:
    """The source without string literals and comments: what names and members are read from."""
    return _COMMENT.sub("", _STRING.sub("''", source))


class ExpressionError(Exception):
    """Internal: one problem with one expression; the loader turns it into a Problem."""

    def __init__(self, code: str, name: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.name = name
        self.message = message


@dataclass(frozen=True, slots=True)
class Compiled:
    """A compiled CEL program, the source it came from, and what it reads.

    ``needs`` maps each variable the expression reads to the members it reads, or to None when
    it uses the variable whole; the runtime passes CEL only these, since converting values into
    CEL costs microseconds each.
    """

    source: str
    program: Any
    needs: dict[str, frozenset[str] | None]
    calls: bool = False  # whether it calls a domain function, which may fail
    native: Native | None = None  # the same expression in Python (xieshang.native), if simple

    def run(self, context: Any) -> Any:
        """Evaluate the expression over an :class:`Activation` (natively when it is simple
        and the native function vouches for CEL's answer) or a CEL context.

        Raises:
            FunctionFailed: a domain function failed (naming it and its arguments); the CEL
                binding never sees the exception, so nothing is printed.
        """
        if isinstance(context, Activation):
            if self.native is not None and not self.calls:  # no domain function to fail
                try:
                    return plain(self.native(context))
                except Exception:  # Unsure, or anything CEL may answer otherwise
                    pass
            elif self.native is not None:
                token = _FAILED.set(None)
                try:
                    value = plain(self.native(context))
                    if _FAILED.get() is None:
                        return value
                except Exception:  # Unsure, or anything CEL may answer otherwise
                    pass
                finally:
                    _FAILED.reset(token)
            context = context.cel()
        if not self.calls:
            return self.program.execute(context)
        token = _FAILED.set(None)
        try:
            result = self.program.execute(context)
        except Exception:
            failed = _FAILED.get()
            if failed is not None:
                raise failed from None
            raise
        finally:
            failed = _FAILED.get()
            _FAILED.reset(token)
        if failed is not None:
            raise failed
        return result


# The failure of a domain function during one evaluation. A function that raised into the CEL
# binding would be printed to stderr; ours record the failure here and return None instead.
_FAILED: contextvars.ContextVar[FunctionFailed | None] = contextvars.ContextVar(
    "xieshang_function_failed", default=None
)


def guarded(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` for CEL: a failure is recorded for :meth:`Compiled.run` to raise as a
    :class:`FunctionFailed` naming ``name``, and the call gives null."""

    @functools.wraps(fn)
    def call(*args: Any) -> Any:
        try:
            return fn(*args)
        except XieshangError as e:
            reason = e.message
        except (ArithmeticError, TypeError, ValueError) as e:
            reason = str(e)
        if _FAILED.get() is None:
            _FAILED.set(FunctionFailed(name, list(args), reason))
        return None

    return call


def new_context(
    variables: dict[str, Any], functions: dict[str, Callable[..., Any]] | None = None
) -> Any:
    """The context an expression runs in: its variables, and the functions it may call."""
    return cel.Context(variables, functions)


def activation(
    variables: dict[str, Any], functions: dict[str, Callable[..., Any]] | None = None
) -> Activation:
    """Like :func:`new_context`, but the CEL context is built only if an expression that
    cannot run natively needs it."""
    return Activation(variables, functions, new_context)


def instance_view(instance: Instance) -> dict[str, Any]:
    """What ``instance`` is to an expression: the members of ``INSTANCE_FIELDS``."""
    return {
        "id": instance.id,
        "workflow": instance.workflow,
        "state": instance.state,
        "version": instance.version,
        "org": instance.org,
        "created_at": instance.created_at,
        "entered_at": instance.entered_at,
        "parent_id": instance.parent_id,
        "unit": instance.unit,
    }


def references(source: str) -> list[tuple[str, str]]:
    """The ``name.member`` pairs an expression reads, ignoring string literals."""
    stripped = _strip(source)
    return [(m.group(1), m.group(2)) for m in _MEMBER.finditer(stripped)]


def compile_expression(
    source: str,
    *,
    names: Iterable[str],
    members: Mapping[str, Iterable[str] | None],
    lookup: bool = False,
) -> Compiled:
    """Compile ``source`` and check every name, member and function it uses.

    Args:
        source: the CEL text.
        names: the variables this place may read.
        members: for a variable, the members it has (None: any member, e.g. ``item``).
        lookup: whether this place may call ``lookup(id)`` (a guard or its message).

    Raises:
        ExpressionError: bad syntax (XS120), unknown variable (XS121), function (XS122),
            or member such as an undeclared data field (XS123).
    """
    try:
        program = cel.compile(source)
    except (ValueError, RuntimeError) as e:
        first = str(e).splitlines()[0]
        raise ExpressionError("XS120", "bad-expression", f"{first}") from e
    allowed = set(names)
    bound = set(_MACRO_VAR.findall(_strip(source)))
    unknown = [v for v in program.variables() if v not in allowed and v not in bound]
    if unknown == [PARENT]:
        raise ExpressionError(
            "XS121",
            "unknown-name",
            f"parent in {source!r}: it reads the parent as it is now, and is allowed only in a "
            "transition's guard, guard_message and warn (a replay runs every other expression "
            "again from the instance's own history); to keep a value of the parent, copy it "
            "into the child's data with spawn.data or the parent's children_set",
        )
    if unknown:
        raise ExpressionError(
            "XS121",
            "unknown-name",
            f"unknown name {unknown[0]!r} in {source!r}; names allowed here: "
            + ", ".join(sorted(allowed)),
        )
    for fn in program.functions():
        if fn[0] in "_@!-" or fn in BUILTIN_FUNCTIONS or (lookup and fn == LOOKUP):
            continue
        if fn == LOOKUP:
            raise ExpressionError(
                "XS122",
                "unknown-function",
                f"lookup() in {source!r}: it reads other instances as they are now, and is "
                "allowed only in a transition's guard and guard_message",
            )
        raise ExpressionError(
            "XS122",
            "unknown-function",
            f"unknown function {fn!r} in {source!r}; domain functions: "
            + ", ".join(sorted(DOMAIN_FUNCTIONS)),
        )
    for var, member in references(source):
        if var in bound or var not in members:
            continue
        known = members[var]
        if known is not None and member not in known:
            raise ExpressionError(
                "XS123",
                "unknown-member",
                f"{var}.{member} is not declared in {source!r}"
                + _did_you_mean(member, known)
                + f"; {var} has: "
                + (", ".join(sorted(known)) or "nothing"),
            )
    return Compiled(
        source,
        program,
        _needs(source, [v for v in program.variables() if v not in bound]),
        calls=bool(set(program.functions()) & (DOMAIN_FUNCTIONS | {LOOKUP})),
        native=compile_native(source) if not bound else None,
    )


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _needs(source: str, variables: list[str]) -> dict[str, frozenset[str] | None]:
    stripped = _strip(source)
    needs: dict[str, frozenset[str] | None] = {}
    for var in variables:
        uses = len(re.findall(rf"(?<![\w.]){re.escape(var)}\b", stripped))
        members = [m for v, m in references(source) if v == var]
        needs[var] = frozenset(members) if members and len(members) == uses else None
    return needs


def merge_needs(*compiled: Compiled | None) -> dict[str, frozenset[str] | None]:
    """The union of what several expressions read."""
    out: dict[str, frozenset[str] | None] = {}
    for c in compiled:
        if c is None:
            continue
        for var, members in c.needs.items():
            if members is None or (var in out and out[var] is None):
                out[var] = None
            else:
                out[var] = (out.get(var) or frozenset()) | members
    return out
