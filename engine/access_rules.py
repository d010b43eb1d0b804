"""The loader's checks of access: the units a bound role acts for, and the read rules.

Each expression is compiled over ``data``, ``params`` and ``instance``; each rule becomes a
:class:`~xieshang.access.CompiledRule` (see docs/access.md).
"""

from __future__ import annotations

from .access import LEVELS, CompiledRule, default_rules
from .checker import Checker
from .definition import ReadRule
from .yamlsafe import Path

__all__ = ["check_access"]


def check_access(checker: Checker) -> None:
    """Compile ``bound_roles`` and ``read:`` into the checker, adding a problem for each fault."""
    roles = set(checker.d.roles)
    bound = checker.d.bound_roles
    for j, role in enumerate(bound):
        where: Path = ("bound_roles", role) if isinstance(bound, dict) else ("bound_roles", j)
        if not checker.role_ref(role, roles, where):
            continue
        if not isinstance(bound, dict):
            checker.bound[role] = None
            continue
        sources = bound[role]
        if not sources:
            checker.add(
                "XS010",
                "schema",
                f"bound role {role!r} names no source of units (e.g. [data.units])",
                where,
            )
        compiled = [checker.access_expr(src, (*where, k)) for k, src in enumerate(sources)]
        checker.bound[role] = tuple(c for c in compiled if c is not None)
    spec = checker.d.read
    for name, level in LEVELS.items():
        # without a read: section anyone of the org reads all, as before, but for the
        # drafts and non-public instances that default_rules holds back; with one, a level
        # left out grants nothing beyond what the higher levels grant
        if spec is None:
            rules = default_rules(checker.d.states, checker.d.data) if name == "internal" else []
        else:
            rules = list(getattr(spec, name) or ())
        for k, rule in enumerate(rules):
            path: Path = ("read", name, k)
            compiled_rule = _read_rule(checker, rule, level, path, roles)
            if compiled_rule is not None:
                checker.read_rules.append(compiled_rule)


def _read_rule(
    checker: Checker, rule: ReadRule, level: int, path: Path, roles: set[str]
) -> CompiledRule | None:
    if not (rule.roles or rule.units or rule.named or rule.anyone):
        checker.add(
            "XS010",
            "schema",
            "a read rule needs one of roles, units, named or anyone",
            path,
        )
        return None
    for j, role in enumerate(rule.roles):
        checker.role_ref(role, roles, (*path, "roles", j))
    for j, role in enumerate(rule.units):
        if not checker.role_ref(role, roles, (*path, "units", j)):
            continue
        if role not in checker.d.bound_units and not checker.unknown("bound_roles"):
            checker.add(
                "XS124",
                "unbound-units",
                f"role {role!r} is not bound to units; bound roles: "
                + (", ".join(checker.d.bound_units) or "none"),
                (*path, "units", j),
            )
    for key in ("states", "not_states"):
        for j, state in enumerate(getattr(rule, key)):
            checker.state_ref(state, (*path, key, j))
    named = [checker.access_expr(src, (*path, "named", j)) for j, src in enumerate(rule.named)]
    when = checker.access_expr(rule.when, (*path, "when")) if rule.when is not None else None
    return CompiledRule(
        level=level,
        roles=rule.roles,
        units=rule.units,
        named=tuple(c for c in named if c is not None),
        anyone=rule.anyone,
        states=frozenset(rule.states),
        not_states=frozenset(rule.not_states),
        when=when,
    )
