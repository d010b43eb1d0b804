"""The type of each part of an expression, and the mistakes between types found on the way.

A walk over the tree of :mod:`xieshang.typecheck_parse`: it gives the type of the whole and
records each comparison or arithmetic between types that cannot meet (XS128), each date or
duration literal that does not parse (XS129) and each call with the wrong number or types of
arguments (XS130). A part of unknown type (``dyn``) is never a mistake, nor is anything done
with it; a part found wrong counts as unknown, so one mistake is reported once.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from datetime import date
from typing import NamedTuple

from .calendar import parse_duration, parse_offset
from .errors import CalendarError
from .expressions import compile_expression, new_context
from .typecheck_parse import KEYWORD_PREFIX, Parsed
from .typecheck_types import DYN, NUMBERS, STRINGS, Signature, T, accepts, signatures

__all__ = ["Finding", "Infer", "date_problem"]

MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_ORDERED = NUMBERS | STRINGS | {"timestamp", "interval", "bool", "bytes"}
_OPS = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Mod: "%",
}


class Finding(NamedTuple):
    code: str
    name: str
    message: str


def date_problem(text: str) -> str | None:
    """Why ``text`` is not a date as data holds one (``YYYY-MM-DD``), or None."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return "is not a date (YYYY-MM-DD)"
    try:
        date.fromisoformat(text)
    except ValueError as e:
        return f"is not a date ({e})"
    return None


def _family(t: T) -> str:
    if t.kind in ("string", "enum"):
        return "text"
    if t.kind in NUMBERS:
        return "number"
    return "map" if t.kind == "record" else t.kind


def _fix(a: T, b: T, sa: str, sb: str) -> str:
    """How to make ``sa`` (of type a) and ``sb`` (of type b) meet, in the file's terms."""
    pair = {a.kind, b.kind}
    pick = sa if a.kind == "timestamp" else sb
    other = sb if a.kind == "timestamp" else sa
    if pair == {"timestamp", "date"}:
        return f"compare dates: write date({pick})"
    if pair == {"timestamp", "datetime"}:
        return f"write timestamp({other})"
    if "timestamp" in pair and pair & {"string", "enum"}:
        return f"write timestamp({other}) for a moment, or compare date({pick}) with a date"
    if pair == {"date", "datetime"}:
        return f"write date({sa if a.kind == 'datetime' else sb})"
    if pair <= NUMBERS:
        return f"convert one side, e.g. double({sa if a.kind != 'double' else sb})"
    if pair & NUMBERS and pair & STRINGS:
        num = sa if a.kind in NUMBERS else sb
        return f"convert one side: int(...) of the text, or string({num})"
    return "compare values of one type"


class Infer:
    """The types of the parts of one parsed expression over the types of its names."""

    def __init__(self, parsed: Parsed, env: Mapping[str, T]) -> None:
        self.p = parsed
        self.env = dict(env)
        self.findings: list[Finding] = []

    def add(self, code: str, name: str, node: ast.expr, message: str) -> T:
        self.findings.append(Finding(code, name, f"`{self.p.text(node)}` {message}"))
        return DYN

    def type_of(self, node: ast.expr) -> T:
        method = getattr(self, "_" + type(node).__name__.lower(), None)
        return DYN if method is None else method(node)

    # -- leaves and parts ----------------------------------------------------------------------

    def _constant(self, node: ast.Constant) -> T:
        v = node.value
        kind = {bool: "bool", int: "int", float: "double", str: "string", bytes: "bytes"}
        return T(kind.get(type(v), "dyn"), literal=(v,))

    def _name(self, node: ast.Name) -> T:
        name = node.id.removeprefix(KEYWORD_PREFIX)
        if name in ("true", "false"):
            return T("bool")
        if name == "null":
            return T("null")
        return self.env.get(name, DYN)

    def _attribute(self, node: ast.Attribute) -> T:
        return self.type_of(node.value).member(node.attr.removeprefix(KEYWORD_PREFIX))

    def _subscript(self, node: ast.Subscript) -> T:
        base = self.type_of(node.value)
        key = self.type_of(node.slice)
        if base.kind == "list":
            return base.of or DYN
        if base.kind == "record" and key.literal and isinstance(key.literal[0], str):
            return base.member(key.literal[0])
        return base.of or DYN if base.kind == "map" else DYN

    def _common(self, types: list[T]) -> T:
        kinds = {t.kind for t in types if t.kind != "null"}
        if len(kinds) != 1:
            return DYN
        first = next(t for t in types if t.kind != "null")
        return T(first.kind, of=first.of, fields=first.fields, values=first.values)

    def _list(self, node: ast.List) -> T:
        return T("list", of=self._common([self.type_of(e) for e in node.elts]))

    def _dict(self, node: ast.Dict) -> T:
        for k in node.keys:
            if k is not None:
                self.type_of(k)
        return T("map", of=self._common([self.type_of(v) for v in node.values]))

    # -- operators -----------------------------------------------------------------------------

    def _bool(self, node: ast.expr, what: str) -> None:
        t = self.type_of(node)
        if not t.unknown and t.kind != "bool":
            self.add("XS128", "type-mismatch", node, f"is {t}; {what} takes a bool")

    def _unaryop(self, node: ast.UnaryOp) -> T:
        if isinstance(node.op, ast.Invert):
            self._bool(node.operand, "!")
            return T("bool")
        t = self.type_of(node.operand)
        if t.unknown or t.kind in NUMBERS | {"interval"}:
            return T(t.kind)
        return self.add("XS128", "type-mismatch", node, f"negates {t}; - takes a number")

    def _boolop(self, node: ast.BoolOp) -> T:
        what = "&&" if isinstance(node.op, ast.And) else "||"
        for value in node.values:
            self._bool(value, what)
        return T("bool")

    def _ifexp(self, node: ast.IfExp) -> T:
        # respelt from CEL's `c ? a : b` as `c if a else b`: body is the condition
        self._bool(node.body, "the condition of ? :")
        return self._common([self.type_of(node.test), self.type_of(node.orelse)])

    def _compare(self, node: ast.Compare) -> T:
        left_node, left = node.left, self.type_of(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.type_of(right_node)
            self.compare(node, _OPS.get(type(op), "?"), (left_node, left), (right_node, right))
            left_node, left = node, T("bool")
        return T("bool")

    def compare(
        self, node: ast.expr, op: str, lhs: tuple[ast.expr, T], rhs: tuple[ast.expr, T]
    ) -> None:
        (an, a), (bn, b) = lhs, rhs
        sa, sb = self.p.text(an), self.p.text(bn)
        if op == "in":
            if b.kind == "list" and b.of is not None:
                self.compare(node, "==", lhs, (bn, b.of))
            elif not (b.unknown or b.kind in ("map", "record")):
                self.add("XS128", "type-mismatch", node, f"looks in {b}; in takes a list or a map")
            return
        if a.unknown or b.unknown:
            return
        for x, y in ((a, b), (b, a)):
            literal = y.literal[0] if y.literal and isinstance(y.literal[0], str) else None
            if literal is None:
                continue
            # '' stands for "none given" beside a date: only its order is a mistake
            empty = literal == "" and op in ("==", "!=")
            problem = date_problem(literal) if x.kind == "date" and not empty else None
            if problem:
                message = (
                    f"compares a date with {literal!r}, which {problem}; write e.g. '2024-10-10'"
                )
                self.add("XS129", "bad-literal", node, message)
                return
            if x.kind == "enum" and x.values and op in ("==", "!=") and literal not in x.values:
                always = "true" if op == "!=" else "false"
                message = f"is always {always}: {literal!r} is not one of {', '.join(x.values)}"
                self.add("XS128", "type-mismatch", node, message)
                return
        fa, fb = _family(a), _family(b)
        meet = fa == fb or (
            {fa, fb} <= {"text", "date", "datetime", "duration"} and "text" in {fa, fb}
        )
        if meet and (op in ("==", "!=") or a.kind in _ORDERED):
            return
        never = " (never equal)" if op in ("==", "!=") else ""
        self.add(
            "XS128", "type-mismatch", node, f"compares {a} with {b}{never}; {_fix(a, b, sa, sb)}"
        )

    def _binop(self, node: ast.BinOp) -> T:
        a, b = self.type_of(node.left), self.type_of(node.right)
        op = _OPS.get(type(node.op), "?")
        if a.unknown or b.unknown:
            return DYN
        kinds = {a.kind, b.kind}
        if kinds <= NUMBERS and not (
            {"int", "double"} <= kinds or {"uint", "int"} <= kinds or {"uint", "double"} <= kinds
        ):
            return T(a.kind if a.kind == b.kind else "number")
        if op == "+" and kinds <= STRINGS:
            return T("string")
        if op == "+" and a.kind == b.kind == "list":
            return T("list", of=self._common([a.of or DYN, b.of or DYN]))
        if (
            op in "+-"
            and kinds == {"timestamp", "interval"}
            and (op == "+" or a.kind == "timestamp")
        ):
            return T("timestamp")
        if op in "+-" and kinds == {"interval"}:
            return T("interval")
        if op == "-" and kinds == {"timestamp"}:
            return T("interval")
        sa, sb = self.p.text(node.left), self.p.text(node.right)
        if "date" in kinds and op in "+-" and kinds & (NUMBERS | {"date"}):
            fix = (
                f"write days_between({sb}, {sa}) or workdays_between({sb}, {sa})"
                if kinds == {"date"}
                else "write add_workdays(date, n), or due_date(date, '5 working days')"
            )
            return self.add(
                "XS128",
                "type-mismatch",
                node,
                f"does {op} on {a} and {b} (a date is text at run time); {fix}",
            )
        if kinds <= NUMBERS:
            fix = _fix(a, b, sa, sb)
        elif kinds & NUMBERS and kinds & STRINGS and op == "+":
            fix = f"write string({sa if a.kind in NUMBERS else sb}) to join text"
        else:
            fix = f"{op} takes two numbers, two texts, two lists, or timestamps and durations"
        return self.add("XS128", "type-mismatch", node, f"does {op} on {a} and {b}; {fix}")

    # -- calls ---------------------------------------------------------------------------------

    def _call(self, node: ast.Call) -> T:
        func = node.func
        if isinstance(func, ast.Attribute):
            name, args = func.attr, [func.value, *node.args]
            if name in MACROS and node.args and isinstance(node.args[0], ast.Name):
                return self._macro(node, name, func.value, node.args)
        elif isinstance(func, ast.Name):
            name, args = func.id, list(node.args)
        else:
            return DYN
        if name == "has":
            return T("bool")
        types = [self.type_of(a) for a in args]
        found = signatures(name)
        return DYN if found is None else self._apply(node, name, found, args, types)

    def _apply(
        self,
        node: ast.Call,
        name: str,
        found: tuple[Signature, ...],
        args: list[ast.expr],
        types: list[T],
    ) -> T:
        fitting = [s for s in found if len(s.params) == len(types)]
        takes = " or ".join(f"({s.text.replace(' ->', ') ->')}" for s in found)
        if not fitting:
            n = len(types)
            return self.add(
                "XS130",
                "bad-call",
                node,
                f"calls {name} with {n} argument{'s' * (n != 1)}; {name} takes {takes}",
            )
        for sig in fitting:
            if all(accepts(p, t) for p, t in zip(sig.params, types, strict=True)):
                for param, arg, t in zip(sig.params, args, types, strict=True):
                    self._literal(name, param, arg, t)
                return sig.result
        sig = fitting[0]
        j, t = next(
            (j, t)
            for j, (p, t) in enumerate(zip(sig.params, types, strict=True))
            if not accepts(p, t)
        )
        return self.add(
            "XS130",
            "bad-call",
            node,
            f"passes {t} as argument {j + 1} of {name} (`{self.p.text(args[j])}`); "
            f"{name} takes {takes}",
        )

    def _literal(self, name: str, param: frozenset[str], arg: ast.expr, t: T) -> None:
        """A text literal where a date or duration is expected: it must read as one."""
        if not (t.literal and isinstance(t.literal[0], str)):
            return
        text = t.literal[0]
        problem = None
        if name in ("timestamp", "duration"):
            try:
                compile_expression(f"{name}(x)", names=["x"], members={}).run(
                    new_context({"x": text})
                )
            except (ValueError, RuntimeError, TypeError) as e:
                problem = f"is not a CEL {name} ({str(e).splitlines()[0]})"
        elif "duration" in param:
            try:  # due_date counts backwards too ('-5 working days')
                parse_offset(text) if name == "due_date" else parse_duration(text)
            except CalendarError:
                problem = "is not a duration; write e.g. '5 working days', '10 days', '3 months'"
        elif "date" in param:
            try:
                date.fromisoformat(text[:10])
            except ValueError:
                problem = "is not a date; write e.g. '2024-10-10'"
        if problem:
            self.add("XS129", "bad-literal", arg, f"{problem} (argument of {name})")

    def _macro(self, node: ast.Call, name: str, target: ast.expr, args: list[ast.expr]) -> T:
        over = self.type_of(target)
        element = (
            (over.of or DYN)
            if over.kind == "list"
            else (T("string") if over.kind in ("map", "record") else DYN)
        )
        var = args[0].id if isinstance(args[0], ast.Name) else ""
        saved = self.env.get(var)
        self.env[var] = element
        try:
            if name == "map":
                for cond in args[1:-1]:
                    self._bool(cond, "the filter of map()")
                return T("list", of=self.type_of(args[-1]) if len(args) > 1 else DYN)
            for cond in args[1:]:
                self._bool(cond, f"{name}()")
            return T("list", of=element) if name == "filter" else T("bool")
        finally:
            if saved is None:
                self.env.pop(var, None)
            else:
                self.env[var] = saved
