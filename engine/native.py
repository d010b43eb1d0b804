"""Simple expressions run as Python: the same results as CEL without building a CEL context.

Converting a step's values into CEL costs more than most guards and effects take to evaluate,
and most of them are simple: members of ``data``, ``payload``, ``params``, ``actor``, constants,
``==``, ``!=``, ``<``, ``&&``, ``||``, ``!``, ``? :``, ``in`` a list, ``size()`` of a list or
map, ``+`` and the domain's date functions. :func:`compile_native` reads such an expression
into a Python function over the variables of an :class:`Activation`; anything else gives None
and the expression always runs in CEL.

A native function either gives the value CEL gives, or raises :class:`Unsure`: wherever CEL
would fail (a missing key, an operation on a null or on mixed types, an overflow), or where its
rules are not mirrored here (strings' ``size``, comparing lists, timestamps, a domain function
that failed), the expression is run again in CEL, which gives its own value or error. So the
result, the refusal and its message are CEL's in every case.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Activation", "Native", "Unsure", "compile_native", "plain"]

Native = Callable[["Activation"], Any]
_INT64 = (-(2**63), 2**63 - 1)
_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+)(?![\w.])|(?P<str>'[^'\\\n]*'|\"[^\"\\\n]*\")|(?P<name>[A-Za-z_]\w*)"
    r"|(?P<op>\|\||&&|==|!=|<=|>=|[<>?:!()\[\].,+-]))"
)
_KEYWORDS = {"true": True, "false": False, "null": None}


class Unsure(Exception):
    """Internal: the native function cannot vouch for CEL's answer; CEL runs instead."""


class Activation:
    """The variables and functions an expression runs over; the CEL context is built from them
    only when an expression needs CEL (``build`` makes it, once)."""

    __slots__ = ("_cel", "build", "functions", "variables")

    def __init__(
        self,
        variables: dict[str, Any],
        functions: Mapping[str, Callable[..., Any]] | None,
        build: Callable[[dict[str, Any], Any], Any],
    ) -> None:
        self.variables = variables
        self.functions = functions or {}
        self.build = build
        self._cel: Any = None

    def cel(self) -> Any:
        if self._cel is None:
            self._cel = self.build(self.variables, dict(self.functions) or None)
        return self._cel

    def add_variable(self, name: str, value: Any) -> None:
        self.variables[name] = value
        if self._cel is not None:
            self._cel.add_variable(name, value)


def compile_native(source: str) -> Native | None:
    """The Python function of ``source``, or None when it is not in the subset read here."""
    tokens: list[tuple[str, str]] = []
    at, text = 0, source.strip()
    while at < len(text):
        m = _TOKEN.match(text, at)
        if m is None or m.end() == at:
            return None
        kind = m.lastgroup
        assert kind is not None
        tokens.append((kind, m.group(kind)))
        at = m.end()
    parser = _Parser(tokens)
    try:
        fn = parser.ternary()
    except _NotHere:
        return None
    return fn if parser.at == len(tokens) else None


class _NotHere(Exception):
    """Internal: the text is outside the subset."""


def _cat(value: Any) -> int:
    """The kind of a scalar for equality: null, bool, number, string; Unsure for the rest."""
    kind = type(value)
    if kind is str:
        return 3
    if kind is int or kind is float:
        return 2
    if value is None:
        return 0
    if value is True or value is False:
        return 1
    if isinstance(value, int | float):
        return 2
    if isinstance(value, str):
        return 3
    raise Unsure


def _eq(a: Any, b: Any) -> bool:
    ka, kb = _cat(a), _cat(b)
    if ka == kb == 2 and type(a) is not type(b):
        raise Unsure  # an integer against a double: CEL's conversion is not mirrored
    return ka == kb and a == b


def _int(value: Any) -> int:
    if type(value) is int and _INT64[0] <= value <= _INT64[1]:
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise Unsure
    if not _INT64[0] <= value <= _INT64[1]:
        raise Unsure
    return value


def plain(value: Any) -> Any:
    """``value`` if CEL would give it back unchanged (JSON values); Unsure otherwise."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        return _int(value)
    if isinstance(value, bool | str | float):
        return value
    if isinstance(value, int):
        return _int(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: plain(v) for k, v in value.items()}
    raise Unsure


def _bool(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise Unsure


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, str) and isinstance(b, str):
        return a + b
    if isinstance(a, list) and isinstance(b, list):
        return a + b
    return _int(_int(a) + _int(b))


def _less(a: Any, b: Any) -> tuple[Any, Any]:
    if isinstance(a, str) and isinstance(b, str):
        return a, b
    if type(a) is type(b) and type(a) in (int, float):
        return a, b
    raise Unsure


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": _eq,
    "!=": lambda a, b: not _eq(a, b),
    "<": lambda a, b: (lambda x, y: x < y)(*_less(a, b)),
    "<=": lambda a, b: (lambda x, y: x <= y)(*_less(a, b)),
    ">": lambda a, b: (lambda x, y: x > y)(*_less(a, b)),
    ">=": lambda a, b: (lambda x, y: x >= y)(*_less(a, b)),
}


def _in(needle: Any, haystack: Any) -> bool:
    if not isinstance(haystack, list):
        raise Unsure
    _cat(needle)
    return any(_eq(needle, v) for v in haystack)


def _null_check(op: str, other: Native) -> Native | None:
    """``other == null`` or ``other != null``: CEL compares any value with null, and only null
    equals it (a list, a map or a moment too), so the check needs no kind of the value."""
    if op == "==":
        return lambda a: other(a) is None
    if op == "!=":
        return lambda a: other(a) is not None
    return None


def _size(value: Any) -> int:
    if isinstance(value, list | dict):
        return len(value)
    raise Unsure  # a string's size is its UTF-8 length in this binding: left to CEL


def _member(value: Any, name: str) -> Any:
    if isinstance(value, dict):
        found = value.get(name, _MISSING)
        if found is not _MISSING:
            return found
    raise Unsure


_MISSING = object()


def _index(value: Any, at: Any) -> Any:
    if isinstance(value, list) and type(at) is int and 0 <= at < len(value):
        return value[at]
    raise Unsure


class _Parser:
    """Precedence climbing over CEL's operators, each rule giving a function of the
    activation."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.at = 0
        self.boolean: set[Native] = set()  # the functions that give a bool or raise

    def peek(self) -> str | None:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else None

    def take(self, op: str | None = None) -> tuple[str, str]:
        if self.at >= len(self.tokens) or (op is not None and self.tokens[self.at][1] != op):
            raise _NotHere
        self.at += 1
        return self.tokens[self.at - 1]

    def ternary(self) -> Native:
        cond = self.either()
        if self.peek() != "?":
            return cond
        self.take("?")
        yes = self.ternary()
        self.take(":")
        no = self.ternary()
        if cond in self.boolean:  # a comparison, && or ||: a bool, or it raised
            return lambda a: yes(a) if cond(a) else no(a)
        return lambda a: yes(a) if _bool(cond(a)) else no(a)

    def either(self) -> Native:
        left = self.both()
        while self.peek() == "||":
            self.take()
            left = _or(left, self.both())
            self.boolean.add(left)
        return left

    def both(self) -> Native:
        left = self.relation()
        while self.peek() == "&&":
            self.take()
            left = _and(left, self.relation())
            self.boolean.add(left)
        return left

    def relation(self) -> Native:
        start = self.at
        left = self.sum()
        left_null = self.only_null(start)
        op = self.peek()
        if op in _COMPARE or op == "in":
            self.take()
            start = self.at
            right = self.sum()
            right_null = self.only_null(start)
            if self.peek() in _COMPARE or self.peek() == "in":
                raise _NotHere  # chained relations: left to CEL
            fn = _null_check(op, right if left_null else left) if left_null or right_null else None
            if fn is None:
                compare = _in if op == "in" else _COMPARE[op]
                fn = lambda a: compare(left(a), right(a))  # noqa: E731
            self.boolean.add(fn)
            return fn
        return left

    def only_null(self, start: int) -> bool:
        """Whether the operand read from ``start`` to here is the literal ``null`` alone."""
        return self.at == start + 1 and self.tokens[start] == ("name", "null")

    def sum(self) -> Native:
        left = self.unary()
        while self.peek() == "+":
            self.take()
            left = _binary(_add, left, self.unary())
        if self.peek() == "-":
            raise _NotHere
        return left

    def unary(self) -> Native:
        if self.peek() == "!":
            self.take()
            inner = self.unary()
            return lambda a: not _bool(inner(a))
        if self.peek() == "-":
            self.take()
            inner = self.unary()
            return lambda a: _int(-_int(inner(a)))
        return self.postfix()

    def postfix(self) -> Native:
        start = self.at
        fn = self.primary()
        kind, text = self.tokens[start]
        # a variable's member (``data.title``), the most common of all, is one function
        var = text if self.at == start + 1 and kind == "name" and text not in _KEYWORDS else None
        while self.peek() in (".", "["):
            if self.take()[1] == ".":
                kind, name = self.take()
                if kind != "name" or self.peek() == "(":
                    raise _NotHere  # a method or macro: left to CEL
                fn = _bind_member(fn, name) if var is None else _bind_variable_member(var, name)
            else:
                index = self.ternary()
                self.take("]")
                fn = _binary(_index, fn, index)
            var = None
        return fn

    def primary(self) -> Native:
        kind, text = self.take()
        if kind == "num":
            value: Any = _int(int(text)) if int(text) <= _INT64[1] else None
            if value is None:
                raise _NotHere
            return lambda a: value
        if kind == "str":
            literal = text[1:-1]
            return lambda a: literal
        if kind == "name":
            if text in _KEYWORDS:
                constant = _KEYWORDS[text]
                return lambda a: constant
            if self.peek() == "(":
                return self.call(text)
            return _bind_variable(text)
        if text == "(":
            inner = self.ternary()
            self.take(")")
            return inner
        if text == "[":
            items: list[Native] = []
            while self.peek() != "]":
                items.append(self.ternary())
                if self.peek() != ",":
                    break
                self.take(",")
            self.take("]")
            return lambda a: [item(a) for item in items]
        raise _NotHere

    def call(self, name: str) -> Native:
        self.take("(")
        args: list[Native] = []
        while self.peek() != ")":
            args.append(self.ternary())
            if self.peek() != ",":
                break
            self.take(",")
        self.take(")")
        if name == "size" and len(args) == 1:
            [arg] = args
            return lambda a: _size(arg(a))
        if name in ("has", "type", "dyn", "int", "uint", "double", "string", "bytes"):
            raise _NotHere  # CEL's own functions and macros: left to CEL
        return _bind_call(name, args)


def _bind_variable(name: str) -> Native:
    def variable(a: Activation) -> Any:
        try:
            return a.variables[name]
        except KeyError:
            raise Unsure from None

    return variable


def _bind_variable_member(var: str, name: str) -> Native:
    def member(a: Activation) -> Any:  # _member inlined: the commonest node of all
        try:
            value = a.variables[var]
        except KeyError:
            raise Unsure from None
        if isinstance(value, dict):
            found = value.get(name, _MISSING)
            if found is not _MISSING:
                return found
        raise Unsure

    return member


def _bind_member(fn: Native, name: str) -> Native:
    return lambda a: _member(fn(a), name)


def _binary(op: Callable[[Any, Any], Any], left: Native, right: Native) -> Native:
    return lambda a: op(left(a), right(a))


def _bind_call(name: str, args: list[Native]) -> Native:
    def call(a: Activation) -> Any:
        fn = a.functions.get(name)
        if fn is None:
            raise Unsure
        return fn(*[_plain_arg(arg(a)) for arg in args])

    return call


def _plain_arg(value: Any) -> Any:
    """An argument a domain function receives from CEL as it is: JSON values and moments."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "isoformat"):
        return value
    raise Unsure


def _or(left: Native, right: Native) -> Native:
    """CEL's ``||``: true if either side is true, even when the other fails."""

    def either(a: Activation) -> bool:
        try:
            first: Any = left(a)
        except Unsure:
            first = Unsure
        if first is True:
            return True
        second = right(a)
        if second is True:
            return True
        if first is False and second is False:
            return False
        raise Unsure

    return either


def _and(left: Native, right: Native) -> Native:
    """CEL's ``&&``: false if either side is false, even when the other fails."""

    def both(a: Activation) -> bool:
        try:
            first: Any = left(a)
        except Unsure:
            first = Unsure
        if first is False:
            return False
        second = right(a)
        if second is False:
            return False
        if first is True and second is True:
            return True
        raise Unsure

    return both
