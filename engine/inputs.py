"""What a command may carry: values a store can keep, refused whole before any check.

A payload, start data, a reason, an actor or an id that holds what no store keeps (a NUL
character, which PostgreSQL text refuses; a lone surrogate, which no UTF-8 encoder takes; NaN
or an infinity, which JSON cannot spell; an integer beyond 64 bits; nesting thousands of levels
deep, which overflows every recursive reader) is refused here, at the door of every command,
with :class:`InvalidPayload` naming each place, so that nothing reaches a store or a schema.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from typing import Any

from .errors import InvalidPayload, NotFound, Usage
from .records import Actor

__all__ = ["MAX_DEPTH", "MAX_INT", "input_errors", "refuse_bad_id", "refuse_bad_input"]

MAX_DEPTH = 32  # how deep a payload or start data may nest: a record of lists of records is 3
MAX_INT = 2**63 - 1  # what every store and JSON reader keeps exactly
_SHOWN = 20  # refusals listed at most, per value


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "holds a NUL character (U+0000), which no text may hold"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid Unicode text (it holds a lone surrogate)"
    return None


def _got(value: Any) -> str:
    try:
        shown = repr(value)[:60]
    except (ValueError, RecursionError):  # an integer of thousands of digits, a deep key
        shown = "a value too large to show"
    return f"{shown} that is a {type(value).__name__}"


def _flat_and_plain(value: dict[Any, Any]) -> bool:
    """Whether every key of ``value`` is ASCII text without NUL, and every value such text, a
    bool, None or an integer within 64 bits: what most payloads are, and nothing to refuse."""
    for key, item in value.items():
        if type(key) is not str or not key.isascii() or "\x00" in key:
            return False
        kind = type(item)
        if kind is str:
            if not item.isascii() or "\x00" in item:
                return False
        elif kind is int:
            if not -MAX_INT <= item <= MAX_INT:
                return False
        elif kind is not bool and item is not None:
            return False
    return True


def input_errors(value: Any, where: str = "") -> list[dict[str, Any]]:
    """What in a JSON-shaped ``value`` no store could keep, as ``{field, error, got}``: text
    with NUL or lone surrogates, numbers that are not finite or beyond 64 bits, field names
    that are not text, values that are not JSON, nesting deeper than :data:`MAX_DEPTH`.

    Walks without recursion, so that a value nested thousands of levels deep is refused
    rather than overflowing the stack.
    """
    if type(value) is dict and _flat_and_plain(value):
        return []
    errors: list[dict[str, Any]] = []
    stack: list[tuple[str, Any, int]] = [(where, value, 0)]
    while stack and len(errors) < _SHOWN:
        path, item, depth = stack.pop()
        problem: str | None = None
        if isinstance(item, str):
            problem = _text_problem(item)
        elif isinstance(item, bool) or item is None or isinstance(item, date):
            continue
        elif isinstance(item, int):
            if abs(item) > MAX_INT:
                problem = "is an integer beyond 64 bits (at most 9223372036854775807 either way)"
        elif isinstance(item, float):
            if not math.isfinite(item):
                problem = "is not a finite number (NaN and infinities have no JSON form)"
        elif isinstance(item, Mapping | list | tuple):
            if depth >= MAX_DEPTH:
                problem = f"nests deeper than {MAX_DEPTH} levels"
            elif isinstance(item, Mapping):
                children = []
                for key, child in item.items():
                    if not isinstance(key, str):
                        error = "has a field name that is not text"
                        errors.append({"field": path, "error": error, "got": _got(key)})
                        continue
                    named = f"{path}.{key[:40]}" if path else key[:40]
                    bad_name = _text_problem(key)
                    if bad_name is not None:
                        errors.append({"field": named, "error": f"field name {bad_name}"})
                        continue
                    children.append((named, child, depth + 1))
                stack.extend(reversed(children))
            else:
                stack.extend(
                    reversed([(f"{path}[{i}]", child, depth + 1) for i, child in enumerate(item)])
                )
        else:
            problem = "is not a JSON value (text, number, true/false, null, list or object)"
        if problem is not None:
            shown = {"got": _got(item)} if not isinstance(item, Mapping | list | tuple) else {}
            errors.append({"field": path, "error": problem, **shown})
    return errors[:_SHOWN]


def refuse_bad_input(
    what: str, value: Any, actor: Any, *, reason: Any = None, trigger: str = "start"
) -> dict[str, Any]:
    """``value`` (a payload, or start data) as a dict, once it and the command's ``actor`` and
    ``reason`` are something the store can keep; None is an empty payload.

    Raises:
        InvalidPayload: ``value`` is not a mapping or holds what no store keeps (every place
            listed, see :func:`input_errors`); the reason is not text or holds such
            characters; the actor's id, roles, org or unit do.
        Usage: ``actor`` is not an :class:`Actor`.
    """
    if not isinstance(actor, Actor):
        raise Usage(f"the actor must be an Actor (got {_got(actor)})", "actor")
    _refuse_bad_actor(actor)
    if reason is not None:
        problem = _text_problem(reason) if isinstance(reason, str) else "must be text or None"
        if problem is not None:
            error = {"field": "reason", "error": problem, "got": _got(reason)}
            raise InvalidPayload(f"command {trigger!r}", [error])
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        error = {"field": "", "error": "must be an object of field names to values"}
        raise InvalidPayload(what, [{**error, "got": _got(value)}])
    errors = input_errors(value)
    if errors:
        raise InvalidPayload(what, errors)
    return dict(value)


# actors found keepable, by value: most commands come from a few actors
_GOOD_ACTORS: dict[Actor, None] = {}
_GOOD_ACTORS_KEPT = 1024


def _refuse_bad_actor(actor: Actor) -> None:
    try:
        if actor in _GOOD_ACTORS:
            return
    except TypeError:  # a field that is not even hashable: the checks below name it
        pass
    named = [("id", actor.id), ("org", actor.org), ("unit", actor.unit)]
    named += [("roles", role) for role in sorted(actor.roles, key=str)]
    bad = [
        {"field": field, "error": problem, "got": _got(text)}
        for field, text in named
        if text is not None
        for problem in [_text_problem(text) if isinstance(text, str) else "must be text"]
        if problem is not None
    ]
    if bad:
        raise InvalidPayload("actor", bad)
    if len(_GOOD_ACTORS) >= _GOOD_ACTORS_KEPT:
        _GOOD_ACTORS.clear()
    _GOOD_ACTORS[actor] = None


def refuse_bad_id(kind: str, value: Any, *, option: str | None = None) -> str:
    """``value`` as the key of an instance, a workflow, a trigger or a command.

    Raises:
        NotFound: text no key can be (NUL, a lone surrogate): there is no such ``kind``.
        Usage: not text at all (``option`` names the argument).
    """
    if not isinstance(value, str):
        raise Usage(f"{option or kind} must be text (got {_got(value)})", option or kind)
    if _text_problem(value) is not None:
        raise NotFound(kind, value)
    return value
