"""Named expressions (``let:``): each ``let.NAME`` in an expression is replaced by the text it
names before the expression is compiled, so it is checked (names, members, types) where it is
used, as if written there.

``let`` is a reserved word of CEL, so ``let.NAME`` can mean nothing else. The text goes in
without parentheses when it is a single operand (a name, a member, a call, a literal, a list
or map, something in parentheses), when it is the whole expression, or when it fills a whole
argument (``all(c, let.filed)``, ``!(let.filed)``); in parentheses otherwise.
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
_OPERATOR = re.compile(r"[|&=!<>+\-*/%?:]|\bin\b|\s")
_OPEN = {"(": ")", "[": "]", "{": "}"}


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
        if _atomic(value) or _alone(text, match.start(), match.end()):
            return value.strip()
        return f"({value.strip()})"

    return _TOKEN.sub(one, text)


def _atomic(text: str) -> bool:
    """Whether ``text`` is one operand: nothing but brackets holds an operator or a space."""
    bare = _STRINGS.sub("''", text.strip())
    depth = 0
    top: list[str] = []
    for char in bare:
        if char in _OPEN:
            depth += 1
        elif char in _OPEN.values():
            depth -= 1
        elif depth == 0:
            top.append(char)
    return not _OPERATOR.search("".join(top))


def _alone(text: str, start: int, end: int) -> bool:
    """Whether the reference at ``start:end`` is the whole expression or a whole argument."""
    before = text[:start].rstrip()
    after = text[end:].lstrip()
    if not before and not after:
        return True
    return bool(before) and before[-1] in "([," and bool(after) and after[0] in ")],"
