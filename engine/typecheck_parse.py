"""The tree of a CEL expression for the type checker, built by Python's own parser.

The CEL binding compiles an expression but exposes neither its tree nor a type checker. CEL's
expression grammar is Python's with other spellings for five operators, so the source is
respelt token by token (``&&`` as ``and``, ``||`` as ``or``, ``!`` as ``~``, ``c ? a : b`` as
``c if a else b``, whose operands Python parses at the precedences CEL gives them) and
:func:`ast.parse` builds the tree. Only an expression the binding has already compiled is
respelt; one whose respelling Python does not read is not type-checked at all.
"""

from __future__ import annotations

import ast
import keyword
import re
import warnings
from dataclasses import dataclass

__all__ = ["Parsed", "parse"]

# a Python keyword that CEL allows as a name (``data.from``) is respelt with this prefix
KEYWORD_PREFIX = "_kw_"
_TOKEN = re.compile(
    r"""
    (?P<string>[rRbB]{0,2}(?:'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))
    | (?P<comment>//[^\n]*)
    | (?P<number>(?:0[xX][0-9a-fA-F]+|\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)[uU]?)
    | (?P<name>[A-Za-z_]\w*)
    | (?P<op>&&|\|\||!=|!|\?|:|[(\[{]|[)\]}])
    """,
    re.S | re.X,
)
_RESPELT = {"&&": " and ", "||": " or ", "!": "~", "?": " if "}


class Unsupported(Exception):
    """Internal: CEL that this respelling does not carry (an unsigned literal, a message)."""


@dataclass(frozen=True, slots=True)
class Parsed:
    """The tree of an expression, and the CEL text of any of its nodes."""

    source: str
    tree: ast.expr
    _text: str
    _to_source: tuple[int, ...]
    _line_starts: tuple[int, ...]

    def text(self, node: ast.expr) -> str:
        """The CEL source of ``node``, as written."""
        start = self._offset(node.lineno, node.col_offset)
        end = self._offset(node.end_lineno or node.lineno, node.end_col_offset or 0)
        return self.source[self._to_source[start] : self._to_source[end]].strip()

    def _offset(self, line: int, byte_col: int) -> int:
        start = self._line_starts[line - 1]
        line_text = self._text[start:].split("\n", 1)[0]
        return start + len(line_text.encode()[:byte_col].decode(errors="ignore"))


def parse(source: str) -> Parsed | None:
    """The tree of ``source`` (CEL the binding compiled), or None when it cannot be respelt."""
    try:
        text, to_source = _respell(source)
        with warnings.catch_warnings():
            # escapes CEL has and Python lacks (\? and \`) would warn, not fail
            warnings.simplefilter("ignore")
            tree = ast.parse(text, mode="eval").body
    except (Unsupported, SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    return Parsed(source, tree, text, tuple(to_source), tuple(starts))


def _respell(source: str) -> tuple[str, list[int]]:
    """Python text for ``source`` in parentheses, and for each of its offsets (and the end)
    the offset in ``source`` it comes from."""
    out: list[str] = ["("]
    to_source: list[int] = [0]
    pending = [0]  # per open bracket, the '?' still waiting for their ':'
    pos = 0

    def emit(piece: str, start: int, *, same: bool) -> None:
        out.append(piece)
        if same:
            to_source.extend(range(start, start + len(piece)))
        else:
            to_source.extend([start] * len(piece))

    for m in _TOKEN.finditer(source):
        if m.start() > pos:
            emit(source[pos : m.start()], pos, same=True)
        token, kind = m.group(), m.lastgroup
        if kind == "comment":
            emit(" " * len(token), m.start(), same=True)
        elif kind == "number" and token[-1] in "uU":
            raise Unsupported(token)
        elif kind == "name" and keyword.iskeyword(token) and token != "in":
            emit(KEYWORD_PREFIX + token, m.start(), same=False)
        elif kind == "op" and token in "([{":
            pending.append(0)
            emit(token, m.start(), same=True)
        elif kind == "op" and token in ")]}":
            if len(pending) > 1:
                pending.pop()
            emit(token, m.start(), same=True)
        elif kind == "op" and token == ":" and pending[-1] > 0:
            pending[-1] -= 1
            emit(" else ", m.start(), same=False)
        elif kind == "op" and token in _RESPELT:
            pending[-1] += token == "?"
            emit(_RESPELT[token], m.start(), same=False)
        else:
            emit(token, m.start(), same=True)
        pos = m.end()
    if pos < len(source):
        emit(source[pos:], pos, same=True)
    out.append(")")
    to_source.extend([len(source), len(source)])
    return "".join(out), to_source
