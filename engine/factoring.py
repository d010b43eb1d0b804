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
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from .branches import expand_branches
from .errors import Problem
from .fields import IDENT
from .lets import LetError, expand_lets, substitute
from .named_types import NamedTypes
from .shape_errors import suggest
from .yamlsafe import Located, Path, format_path

__all__ = ["FACTORING_KEYS", "Expanded", "Expansion", "expand", "is_factored"]

FACTORING_KEYS = ("types", "role_groups", "let")
_LABEL_KEYS = frozenset({"label", "title", "guard_message", "message"})
_NOT_CEL = frozenset({"description", "default", "values", "item_values", "enum", "roles"})


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
        expand_branches(self)
        named = NamedTypes(self)
        named.read(types)
        for path, fields in named.field_maps():
            for name, spec in list(fields.items()):
                fields[name] = named.field((*path, name), spec)
        self.role_groups(groups)
        self.lets(lets)

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
            if isinstance(value, list) and isinstance(part, int):
                value = value[part] if 0 <= part < len(value) else None
            elif isinstance(value, dict):
                value = value.get(part)
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
    return re.match(IDENT, name) is not None
