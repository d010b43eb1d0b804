"""The format's factoring, expanded when a file loads: named ``types``, ``role_groups``, ``let``
expressions and a transition's ``branches`` become the plain definition they stand for.

The definition model, the checks, the compiler and the runtime see only the plain form, so a
file written with the factoring runs exactly like the same file written out, and its
``content_hash`` (taken of the plain form) is the same. Each problem of the factoring is coded
(XS134-XS140) at its place in the file; the paths of the expanded definition are mapped back
to the file (a branch's ``to`` is ``transitions[2].branches[1].to``, not the index of the
transition it became).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, NamedTuple

from .errors import Problem
from .fields import IDENT
from .lets import LetError, expand_lets, substitute
from .shape_errors import suggest
from .yamlsafe import Located, Path, format_path

__all__ = ["FACTORING_KEYS", "Expanded", "Expansion", "expand", "is_factored"]

FACTORING_KEYS = ("types", "role_groups", "let")
BUILTIN_TYPES = (
    "string", "text", "int", "number", "bool", "enum", "date", "datetime", "list", "object"
)  # fmt: skip
_LABEL_KEYS = frozenset({"label", "title", "guard_message", "message"})
_NOT_CEL = frozenset({"description", "default", "values", "item_values", "enum", "roles"})
_BRANCH_BASE = ("to", "guard", "guard_message")
_NOT_IN_BRANCH = ("trigger", "from", "branches")


class Expansion(NamedTuple):
    """The plain data, the map from its paths to the file's, the problems, and the places (of
    the plain data) whose content the problems leave unknown."""

    data: Any
    origin: Callable[[Path], Path]
    problems: list[Problem]
    lost: set[Path]


class Expanded(Located):
    """A file's located data after expansion: its problems are placed at the file's paths."""

    __slots__ = ("origin",)

    def __init__(self, located: Located, origin: Callable[[Path], Path], data: Any) -> None:
        super().__init__(data, located.lines, located.file)
        self.origin = origin

    def line_of(self, path: Path) -> int | None:
        return Located.line_of(self, self.origin(path))

    def problem(self, code: str, name: str, message: str, path: Path) -> Problem:
        at = self.origin(path)
        return Problem(code, name, message, format_path(at), self.file, Located.line_of(self, at))


def is_factored(data: Any) -> bool:
    """Whether ``data`` uses any of the factoring (else it is already the plain form)."""
    if not isinstance(data, dict):
        return False
    if any(key in data for key in FACTORING_KEYS):
        return True
    steps = data.get("transitions")
    return isinstance(steps, list) and any(isinstance(t, dict) and "branches" in t for t in steps)


def expand(located: Located) -> Expansion:
    """The plain form of a workflow file's data (the data itself when it uses no factoring),
    with its problems placed in the file."""
    if not is_factored(located.data):
        return Expansion(located.data, lambda path: path, [], set())
    expander = _Expander(copy.deepcopy(located.data))
    expander.run()
    plain = Expanded(located, expander.origin, expander.data)
    problems = [
        (located if in_file else plain).problem(code, name, message, path)
        for code, name, message, path, in_file in expander.problems
    ]
    return Expansion(expander.data, expander.origin, problems, expander.lost)


class _Expander:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.moves: dict[Path, Path] = {}
        self.problems: list[tuple[str, str, str, Path, bool]] = []
        self.lost: set[Path] = set()
        self.types: dict[str, Any] = {}
        self.resolved: dict[str, dict[str, Any]] = {}

    def origin(self, path: Path) -> Path:
        for n in range(len(path), 0, -1):
            moved = self.moves.get(path[:n])
            if moved is not None:
                return (*moved, *path[n:])
        return path

    def add(
        self,
        code: str,
        name: str,
        message: str,
        path: Path,
        *,
        lose: bool = True,
        file: bool = False,
    ) -> None:
        """A problem at ``path`` of the plain data (``file``: of the file as written)."""
        self.problems.append((code, name, message, path, file))
        if lose and not file:
            self.lost.add(path)

    def run(self) -> None:
        types = self.data.pop("types", None)
        groups = self.data.pop("role_groups", None)
        lets = self.data.pop("let", None)
        self.branches()
        self.read_types(types)
        for path, fields in self.field_maps():
            for name, spec in list(fields.items()):
                fields[name] = self.field((*path, name), spec)
        self.role_groups(groups)
        self.lets(lets)

    # -- branches ------------------------------------------------------------------------------

    def branches(self) -> None:
        steps = self.data.get("transitions")
        if not isinstance(steps, list):
            return
        out: list[Any] = []
        for i, step in enumerate(steps):
            if not (isinstance(step, dict) and "branches" in step):
                if len(out) != i:
                    self.moves[("transitions", len(out))] = ("transitions", i)
                out.append(step)
                continue
            out.extend(self.branch(i, step, len(out)))
        self.data["transitions"] = out

    def branch(self, i: int, step: dict[str, Any], first: int) -> list[dict[str, Any]]:
        where: Path = ("transitions", i)
        branches = step.pop("branches")
        for key in _BRANCH_BASE:
            if key in step:
                self.add(
                    "XS140",
                    "bad-branches",
                    f"a transition with branches holds no {key!r} of its own: each branch "
                    f"has its own to, guard and guard_message",
                    (*where, key),
                    file=True,
                )
                step.pop(key)
        if not isinstance(branches, list) or not branches:
            self.add(
                "XS140",
                "bad-branches",
                "branches is a non-empty list such as [{to: closed, guard: ...}, {to: open}]",
                (*where, "branches"),
                file=True,
            )
            self.lost.add(("transitions", first))
            return [step | {"to": ""}]
        out = []
        last = len(branches) - 1
        for j, branch in enumerate(branches):
            at: Path = (*where, "branches", j)
            k = first + len(out)
            if not isinstance(branch, dict):
                message = "a branch is a mapping such as {to: closed, guard: ...}"
                self.add("XS140", "bad-branches", message, at, file=True)
                continue
            for key in (*_NOT_IN_BRANCH, *([] if "to" in branch else ["to"])):
                if key in branch or key == "to":
                    message = (
                        "a branch needs its 'to'"
                        if key == "to"
                        else f"a branch holds no {key!r}: it is the transition's"
                    )
                    self.add("XS140", "bad-branches", message, (*at, key), file=True)
                    branch.pop(key, None)
            if "guard" not in branch and j != last:
                self.add(
                    "XS140",
                    "bad-branches",
                    f"branch {j} has no guard but is not the last: the branches after it could "
                    "never be taken (only the last branch may go without a guard)",
                    at,
                    file=True,
                )
            self.moves[("transitions", k)] = where
            for key in branch:
                self.moves[("transitions", k, key)] = (*at, key)
            out.append({**step, **branch})
        guarded = [b for b in branches if isinstance(b, dict) and "guard" in b]
        if len(out) > 1 and len(guarded) == len(out):
            joined = _joined_message(guarded)
            for k, merged in enumerate(out):
                merged["guard_message"] = joined
                self.moves[("transitions", first + k, "guard_message")] = (*where, "branches")
        return out

    # -- named types ---------------------------------------------------------------------------

    def read_types(self, types: Any) -> None:
        if types is None:
            return
        if not isinstance(types, dict):
            self.add("XS135", "bad-type", "types is a mapping of names to types", ("types",))
            return
        for name, spec in types.items():
            at: Path = ("types", name)
            problem = _type_problem(name, spec)
            if problem is not None:
                self.add("XS135", "bad-type", problem, at)
                continue
            self.types[name] = spec

    def field_maps(self) -> list[tuple[Path, dict[str, Any]]]:
        out: list[tuple[Path, dict[str, Any]]] = []
        if isinstance(self.data.get("data"), dict):
            out.append((("data",), self.data["data"]))
        for k, step in enumerate(self.data.get("transitions") or ()):
            if isinstance(step, dict) and isinstance(step.get("payload"), dict):
                out.append((("transitions", k, "payload"), step["payload"]))
        return out

    def field(self, path: Path, spec: Any, stack: tuple[str, ...] = ()) -> Any:
        """One field spec with its named types written out (its nested fields too)."""
        if not isinstance(spec, dict):
            return spec
        spec = dict(spec)
        kind = spec.get("type")
        if isinstance(kind, str) and kind not in BUILTIN_TYPES:
            named = self.named(kind, (*path, "type"), stack)
            spec.pop("type")
            spec = {**named, **spec} if named else {"type": "object"}
        items = spec.get("items")
        if isinstance(items, str) and items not in BUILTIN_TYPES:
            named = self.named(items, (*path, "items"), stack)
            spec.pop("items")
            if named.get("type") == "enum":
                spec = {"items": "enum", "item_values": named["values"], **spec}
            elif named:
                spec = {"items": "object", "fields": named["fields"], **spec}
        if isinstance(spec.get("fields"), dict):
            spec["fields"] = {
                k: self.field((*path, "fields", k), v, stack) for k, v in spec["fields"].items()
            }
        return spec

    def named(self, name: str, path: Path, stack: tuple[str, ...]) -> dict[str, Any]:
        """The plain spec a named type stands for (empty when it is unknown or in a cycle)."""
        if name in stack:
            cycle = " -> ".join((*stack[stack.index(name) :], name))
            self.add("XS136", "type-cycle", f"type {name!r} contains itself: {cycle}", path)
            self.lost.add(path[:-1])
            return {}
        if name not in self.types:
            known = [*BUILTIN_TYPES, *self.types]
            self.add(
                "XS134",
                "unknown-type",
                f"unknown type {name!r}" + (suggest(name, known) or "; types: " + ", ".join(known)),
                path,
                lose=False,
            )
            self.lost.add(path[:-1])
            return {}
        if name not in self.resolved:
            spec = self.types[name]
            if "enum" in spec:
                plain: dict[str, Any] = {"type": "enum", "values": list(spec["enum"])}
            else:
                fields = {
                    k: self.field(("types", name, "fields", k), v, (*stack, name))
                    for k, v in spec["fields"].items()
                }
                plain = {"type": "object", "fields": fields}
            if "label" in spec:
                plain["label"] = spec["label"]
            self.resolved[name] = plain
        return copy.deepcopy(self.resolved[name])

    # -- role groups ---------------------------------------------------------------------------

    def role_groups(self, groups: Any) -> None:
        if groups is None:
            return
        roles = self.data.get("roles")
        declared = set(roles) if isinstance(roles, dict) else set()
        known: dict[str, list[str]] = {}
        if not isinstance(groups, dict):
            message = "role_groups is a mapping such as {proposers: [member, party_org]}"
            self.add("XS137", "bad-role-group", message, ("role_groups",))
            return
        for name, members in groups.items():
            at: Path = ("role_groups", name)
            if not isinstance(name, str) or not _is_ident(name):
                self.add("XS137", "bad-role-group", f"{name!r} is not a lower_snake_case name", at)
            elif name in declared:
                message = f"{name!r} is a role; a group needs a name of its own"
                self.add("XS137", "bad-role-group", message, at)
            elif not isinstance(members, list) or not members:
                message = "a role group is a non-empty list of roles such as [member, party_org]"
                self.add("XS137", "bad-role-group", message, at)
            else:
                known[name] = []
                for j, role in enumerate(members):
                    if role in declared or role == "system":
                        known[name].append(role)
                        continue
                    message = f"role group {name!r} names unknown role {role!r}" + suggest(
                        str(role), sorted(declared)
                    )
                    self.add("XS137", "bad-role-group", message, (*at, j), lose=False)
        for path, items in self.role_lists():
            self.data_at(path[:-1])[path[-1]] = self.spread(path, items, known)

    def role_lists(self) -> list[tuple[Path, list[Any]]]:
        out: list[tuple[Path, list[Any]]] = []

        def take(path: Path) -> None:
            value = self.data_at(path)
            if isinstance(value, list):
                out.append((path, value))

        take(("start", "roles"))
        take(("bound_roles",))
        for k in range(len(self.data.get("transitions") or ())):
            take(("transitions", k, "roles"))
        read = self.data.get("read")
        for level in ("see", "data", "internal"):
            rules = read.get(level) if isinstance(read, dict) else None
            for n in range(len(rules) if isinstance(rules, list) else 0):
                take(("read", level, n, "roles"))
                take(("read", level, n, "units"))
        return out

    def data_at(self, path: Path) -> Any:
        value: Any = self.data
        for part in path:
            if (isinstance(value, dict) and part in value) or (
                isinstance(value, list) and isinstance(part, int) and part < len(value)
            ):
                value = value[part]
            else:
                return None
        return value

    def spread(self, path: Path, items: list[Any], groups: dict[str, list[str]]) -> list[Any]:
        if not any(isinstance(item, str) and item in groups for item in items):
            return items
        file_path = self.origin(path)
        out: list[Any] = []
        for j, item in enumerate(items):
            for role in groups.get(item, [item]) if isinstance(item, str) else [item]:
                if role not in out:
                    self.moves[(*path, len(out))] = (*file_path, j)
                    out.append(role)
        return out

    # -- let -----------------------------------------------------------------------------------

    def lets(self, lets: Any) -> None:
        if lets is None:
            return
        try:
            plain, bad = expand_lets(lets)
        except LetError as e:
            self.add("XS139", "bad-let", e.message, ("let", *e.path))
            return
        for name, message in bad.items():
            self.add("XS139", "bad-let", message, ("let", name))
        self._substitute(self.data, (), plain, in_label=False)

    def _substitute(
        self, node: Any, path: Path, lets: dict[str, str | None], *, in_label: bool
    ) -> Any:
        if isinstance(node, dict):
            for key, value in node.items():
                if (key in _NOT_CEL and not in_label) or key in ("id", "trigger"):
                    continue
                node[key] = self._substitute(
                    value, (*path, key), lets, in_label=in_label or key in _LABEL_KEYS
                )
            return node
        if isinstance(node, list):
            return [
                self._substitute(v, (*path, j), lets, in_label=in_label) for j, v in enumerate(node)
            ]
        if not isinstance(node, str) or "let." not in node:
            return node
        unknown: list[str] = []
        text = substitute(node, lets, unknown, placeholders_only=in_label)
        if any(name in lets for name in unknown):
            self.lost.add(path)  # a bad let, reported where it is declared
        for name in dict.fromkeys(n for n in unknown if n not in lets):
            declared = [k for k, v in lets.items() if v is not None]
            hint = suggest(name, declared) or (
                "; lets: " + ", ".join(declared) if declared else "; this file declares no let"
            )
            self.add("XS138", "unknown-let", f"unknown let {name!r}{hint}", path)
        return text


def _is_ident(name: str) -> bool:
    import re

    return re.match(IDENT, name) is not None


def _type_problem(name: Any, spec: Any) -> str | None:
    if not isinstance(name, str) or not _is_ident(name):
        return f"type name {name!r} is not a lower_snake_case name"
    if name in BUILTIN_TYPES:
        return f"{name!r} is a built-in type; a named type needs a name of its own"
    shape = "a type is {enum: [a, b]} or {fields: {name: {type: string}}}, with an optional label"
    if not isinstance(spec, dict) or len({"enum", "fields"} & set(spec)) != 1:
        return shape
    if set(spec) - {"enum", "fields", "label"}:
        extra = sorted(set(spec) - {"enum", "fields", "label"})
        return f"unknown key {extra[0]!r} in type {name!r}; {shape}"
    enum = spec.get("enum")
    if "enum" in spec and not (
        isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum)
    ):
        return "an enum type lists its values as text: {enum: [satisfied, unsatisfied]}"
    fields = spec.get("fields")
    if "fields" in spec and not (isinstance(fields, dict) and fields):
        return "an object type maps its field names to fields: {fields: {unit: {type: string}}}"
    return None


def _joined_message(branches: list[dict[str, Any]]) -> dict[str, str]:
    """The refusal when no branch's guard holds: each branch's message, in order."""
    zh: list[str] = []
    en: list[str] = []
    for branch in branches:
        message = branch.get("guard_message")
        if isinstance(message, str):
            message = {"zh": message}
        if not isinstance(message, dict) or not isinstance(message.get("zh"), str):
            message = {"zh": f"→ {branch.get('to')}"}
        zh.append(message["zh"])
        en.append(str(message.get("en") or message["zh"]))
    out = {"zh": "；".join(zh)}
    if any(
        isinstance(b.get("guard_message"), dict) and b["guard_message"].get("en") for b in branches
    ):
        out["en"] = "; ".join(en)
    return out
