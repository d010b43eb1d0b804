"""Named expressions (``let:``): each ``let.NAME`` in an expression is replaced by the text it
names before the expression is compiled, so it is checked (names, members, types) where it is
used, as if written there.

``let`` is a reserved word of CEL, so ``let.NAME`` can mean nothing else. The text goes in as
written when CEL's precedence reads it whole anyway: a single operand (a name, a member, a call,
a literal, something in brackets), the whole expression, a whole argument (``all(c, let.f)``,
``!(let.f)``), or an expression whose loosest operator binds tighter than the operators beside
the reference (``a == b`` beside ``&&``; ``p && q`` beside ``&&``). Otherwise it goes in
parentheses (``p || q`` beside ``&&``).
"""

from __future__ import annotations

import re
from typing import Any

import cel

from .fields import IDENT

__all__ = ["LetError", "expand_lets", "substitute"]

_STRING = (
    r"""[rRbB]{0,2}(?:'''[\s\S]*?'''|\"\"\"[\s\S]*?\"\"\"|"""
    r"""'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")"""
)
_TOKEN = re.compile(rf"(?P<str>{_STRING})|(?<![\w.])let\.(?P<name>[A-Za-z_]\w*)")
_STRINGS = re.compile(_STRING)
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_OPEN = {"(": ")", "[": "]", "{": "}"}
# CEL's binary operators, loosest first; a unary one or a member access binds tightest
_PRECEDENCE = {"?": 1, ":": 1, "||": 2, "&&": 3, "+": 5, "-": 5, "*": 6, "/": 6, "%": 6}
_PRECEDENCE |= dict.fromkeys(("==", "!=", "<", "<=", ">", ">=", "in"), 4)
_TIGHTEST = 9
_OP = r"\|\||&&|==|!=|<=|>=|<|>|\bin\b|[?:+\-*/%!]"
_OPS = re.compile(_OP)
_BEFORE = re.compile(rf"({_OP}|[(\[,{{])\s*$")
_AFTER = re.compile(rf"^\s*({_OP}|[)\]}},.\[])")


class LetError(Exception):
    """Internal: the ``let`` section itself is not a mapping of names to text."""

    def __init__(self, message: str, path: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def expand_lets(lets: Any) -> tuple[dict[str, str | None], dict[str, str]]:
    """Each let's text with the lets it uses written out, and the problems of the bad ones.

    A bad let (not text, not parsing, in a cycle of lets) maps to None, so that its uses are
    neither unknown nor checked again.

    Raises:
        LetError: the section is not a mapping.
    """
    if not isinstance(lets, dict):
        raise LetError("let is a mapping of names to CEL expressions, e.g. {filed: data.filed}")
    bad: dict[str, str] = {}
    for name, text in lets.items():
        if not isinstance(name, str) or not re.match(IDENT, name):
            bad[str(name)] = f"let name {name!r} is not a lower_snake_case name"
        elif not isinstance(text, str) or not text.strip():
            bad[name] = f"let {name!r} is a CEL expression as text, not {text!r}"
    plain: dict[str, str | None] = dict.fromkeys(bad)
    raw = {k: v for k, v in lets.items() if k not in bad}

    def resolve(name: str, stack: tuple[str, ...]) -> str | None:
        if name in plain:
            return plain[name]
        if name in stack:
            cycle = " -> ".join((*stack[stack.index(name) :], name))
            bad[name] = f"let {name!r} uses itself: {cycle}"
            plain[name] = None
            return None
        unknown: list[str] = []
        inner = {k: resolve(k, (*stack, name)) for k in _refs(raw[name]) if k in raw}
        if name in plain:  # a cycle through it was found meanwhile
            return None
        text = substitute(raw[name], inner, unknown)
        if any(k in raw for k in unknown):  # a bad let it uses, reported there
            plain[name] = None
            return None
        if unknown:
            bad[name] = f"let {name!r} uses unknown let {unknown[0]!r}"
        else:
            try:
                cel.compile(text)
            except (ValueError, RuntimeError) as e:
                bad[name] = f"let {name!r} does not compile: {str(e).splitlines()[0]}"
        plain[name] = None if name in bad else text
        return plain[name]

    for name in raw:
        resolve(name, ())
    return plain, bad


def _refs(text: str) -> list[str]:
    return [m["name"] for m in _TOKEN.finditer(text) if m["name"]]


def substitute(
    text: str, lets: dict[str, str | None], unknown: list[str], *, placeholders_only: bool = False
) -> str:
    """``text`` with each ``let.NAME`` written out (a message: only inside its ``{...}``).

    Names not in ``lets``, and lets that are None (bad ones, reported at their definition),
    are appended to ``unknown`` and left as they are.
    """
    if placeholders_only:
        return _PLACEHOLDER.sub(lambda m: "{" + substitute(m[1], lets, unknown) + "}", text)

    def one(match: re.Match[str]) -> str:
        name = match["name"]
        if name is None:
            return match[0]
        if name not in lets:
            unknown.append(name)
            return match[0]
        value = lets[name]
        if value is None:
            unknown.append(name)
            return match[0]
        if _binds(value, text[: match.start()], text[match.end() :]):
            return value.strip()
        return f"({value.strip()})"

    return _TOKEN.sub(one, text)


def _loosest(text: str) -> int:
    """The precedence of the loosest operator outside brackets and strings (tightest: none)."""
    bare = _STRINGS.sub("''", text.strip())
    depth = 0
    top: list[str] = []
    for char in bare:
        if char in _OPEN:
            depth += 1
            top.append(" ")
        elif char in _OPEN.values():
            depth -= 1
        elif depth == 0:
            top.append(char)
    loosest = _TIGHTEST
    previous_is_operand = False
    for token in re.findall(rf"{_OP}|[^\s?:|&=!<>+\-*/%]+", "".join(top)):
        if _OPS.fullmatch(token):
            # a '-' or '!' with no operand before it is unary: it binds tightest
            binary = previous_is_operand and token != "!"
            loosest = min(loosest, _PRECEDENCE[token] if binary else 7)
            previous_is_operand = False
        else:
            previous_is_operand = True
    return loosest


def _binds(value: str, before: str, after: str) -> bool:
    """Whether ``value`` put between ``before`` and ``after`` is read as one operand."""
    left = _BEFORE.search(before)
    right = _AFTER.match(after)
    beside = []
    if left is not None and left[1] not in "([,{":
        beside.append(7 if left[1] in ("!", "-") else _PRECEDENCE[left[1]])
    elif left is None and before.strip():
        beside.append(_TIGHTEST)  # after an operand: a member or a call
    if right is not None and right[1] not in ")]},":
        beside.append(_TIGHTEST if right[1] in ".[" else _PRECEDENCE[right[1]])
    loosest = _loosest(value)
    if loosest == _TIGHTEST:
        return True  # one operand: a name, a member, a call, a literal, something in brackets
    # && and || are associative: p && q beside && reads the same as (p && q)
    return all(loosest > b or (loosest == b and b in (2, 3)) for b in beside)
