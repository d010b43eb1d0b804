"""The checks of a deployment settings file that its model cannot see, run on the raw data so
that a file with shape problems still has its other problems found (codes in
:mod:`xieshang.deployment`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .checker import param_problem
from .errors import Problem
from .registry import Registry
from .shape_errors import suggest
from .yamlsafe import Located, Path

__all__ = ["check_file", "uses"]

LATEST = "latest"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _listed(org: dict[str, Any]) -> dict[str, Any] | None:
    """An org's ``workflows`` as a mapping of id to version, or None when it lists none."""
    value = org.get("workflows")
    if isinstance(value, list):
        return {w: LATEST for w in value if isinstance(w, str)}
    return value if isinstance(value, dict) else None


def _where(org: dict[str, Any], workflow: str) -> Path:
    value = org.get("workflows")
    if isinstance(value, list):
        return ("workflows", value.index(workflow))
    return ("workflows", workflow)


def uses(registry: Registry, listed: Mapping[str, Any]) -> set[str]:
    """The workflows an org that lists ``listed`` uses: those, and every workflow they spawn
    (an org that handles proposals handles the units' replies they start)."""
    found: set[str] = set()
    todo = [w for w in listed if w in registry.ids()]
    while todo:
        workflow = todo.pop()
        if workflow in found:
            continue
        found.add(workflow)
        for wf in registry.versions():
            if wf.id == workflow:
                todo += [t.spawn.workflow for t in wf.definition.transitions if t.spawn]
    return found | set(listed)


def check_file(
    located: Located, registry: Registry | None, pins: Mapping[str, Mapping[str, int]]
) -> list[Problem]:
    data = located.data
    out: list[Problem] = []
    raw = data.get("orgs")
    orgs = [
        (i, o) for i, o in enumerate(raw if isinstance(raw, list) else []) if isinstance(o, dict)
    ]
    ids: dict[str, int] = {}
    for i, org in orgs:
        oid = org.get("id")
        if isinstance(oid, str):
            if oid in ids:
                msg = f"org id {oid!r} is used by orgs[{ids[oid]}] already"
                out.append(located.problem("XS152", "duplicate-org", msg, ("orgs", i, "id")))
            else:
                ids[oid] = i
    parents = {o["id"]: o.get("parent") for _, o in orgs if isinstance(o.get("id"), str)}
    for i, org in orgs:
        out += _org_checks(located, org, ("orgs", i), ids, parents)
        if registry is not None:
            out += _org_workflows(located, org, ("orgs", i), registry, pins)
    if registry is not None:
        wide = _dict(data.get("params"))
        for workflow, values in wide.items():
            versions = _versions_in_use(data, registry, workflow)
            out += _param_checks(located, ("params",), workflow, values, registry, versions)
    return out


def _org_checks(
    located: Located,
    org: dict[str, Any],
    at: Path,
    ids: Mapping[str, int],
    parents: Mapping[str, Any],
) -> list[Problem]:
    from .deployment import LEVELS, unknown_level

    out: list[Problem] = []
    level = org.get("level")
    if "level" in org and level not in LEVELS:
        out.append(located.problem("XS151", "unknown-level", unknown_level(level), (*at, "level")))
    parent = org.get("parent")
    if isinstance(parent, str):
        if parent not in ids:
            msg = (
                f"parent {parent!r} is not an org of this file{suggest(parent, ids)} "
                f"(orgs: {', '.join(ids) or 'none'})"
            )
            out.append(located.problem("XS153", "unknown-parent", msg, (*at, "parent")))
        elif _in_cycle(org.get("id"), parents):
            chain = _chain(org.get("id"), parents)
            msg = f"org {org.get('id')!r} is its own ancestor ({' -> '.join(chain)})"
            out.append(located.problem("XS154", "parent-cycle", msg, (*at, "parent")))
    if org.get("rollup") is True and parent is None:
        msg = f"org {org.get('id')!r} has no parent to roll its figures up to; give it a parent"
        out.append(located.problem("XS159", "rollup-without-parent", msg, (*at, "rollup")))
    return out


def _chain(start: Any, parents: Mapping[str, Any]) -> list[str]:
    chain = [str(start)]
    current = parents.get(start)
    while isinstance(current, str) and current not in chain:
        chain.append(current)
        current = parents.get(current)
    return [*chain, str(current)]


def _in_cycle(start: Any, parents: Mapping[str, Any]) -> bool:
    seen: set[Any] = set()
    current = parents.get(start)
    while isinstance(current, str) and current not in seen:
        if current == start:
            return True
        seen.add(current)
        current = parents.get(current)
    return False


def _org_workflows(
    located: Located,
    org: dict[str, Any],
    at: Path,
    registry: Registry,
    pins: Mapping[str, Mapping[str, int]],
) -> list[Problem]:
    out: list[Problem] = []
    listed = _listed(org)
    oid = org.get("id")
    pinned = pins.get(oid, {}) if isinstance(oid, str) else {}
    loaded = registry.ids()
    for workflow, version in (listed or {}).items():
        path = (*at, *_where(org, workflow))
        if workflow not in loaded:
            msg = _unknown_workflow(workflow, loaded)
            out.append(located.problem("XS155", "unknown-workflow", msg, path))
            continue
        numbers = registry.version_numbers(workflow)
        if isinstance(version, int) and not isinstance(version, bool):
            if version not in numbers:
                msg = (
                    f"version {version} of {workflow!r} is not loaded (loaded: "
                    f"{', '.join(f'{workflow} v{n}' for n in numbers)})"
                )
                out.append(located.problem("XS156", "version-not-loaded", msg, path))
            elif workflow in pinned and pinned[workflow] != version:
                msg = (
                    f"XIESHANG_PINS pins {oid}:{workflow} to version {pinned[workflow]}, this file "
                    f"to version {version}; name one version in one place"
                )
                out.append(located.problem("XS157", "pin-conflict", msg, path))
    used = uses(registry, listed) if listed is not None else None
    for workflow, values in _dict(org.get("params")).items():
        path = (*at, "params", workflow)
        if used is not None and workflow in loaded and workflow not in used:
            msg = (
                f"org {oid!r} sets params of {workflow!r}, which it does not use (workflows: "
                f"{', '.join(sorted(used))}); add it to its workflows or remove these params"
            )
            out.append(located.problem("XS158", "params-unused", msg, path))
            continue
        version = (listed or {}).get(workflow, pinned.get(workflow, LATEST))
        versions = (
            [version]
            if isinstance(version, int) and version in registry.version_numbers(workflow)
            else [registry.version_numbers(workflow)[-1]]
            if workflow in loaded
            else []
        )
        out += _param_checks(located, (*at, "params"), workflow, values, registry, versions)
    return out


def _versions_in_use(data: dict[str, Any], registry: Registry, workflow: str) -> list[int]:
    """The versions of ``workflow`` some org starts on: the newest, and those pinned."""
    numbers = registry.version_numbers(workflow)
    found = {numbers[-1]} if numbers else set()
    orgs = data.get("orgs")
    for org in orgs if isinstance(orgs, list) else []:
        version = (_listed(org) or {}).get(workflow) if isinstance(org, dict) else None
        if isinstance(version, int) and version in numbers:
            found.add(version)
    return sorted(found)


def _param_checks(
    located: Located,
    at: Path,
    workflow: str,
    values: Any,
    registry: Registry,
    versions: list[int],
) -> list[Problem]:
    loaded = registry.ids()
    if workflow not in loaded:
        msg = _unknown_workflow(workflow, loaded)
        return [located.problem("XS155", "unknown-workflow", msg, (*at, workflow))]
    if not isinstance(values, dict):
        return []  # the shape check names it
    out: list[Problem] = []
    for name, value in values.items():
        for version in versions:  # one problem a param, of the first version it fits badly
            specs = registry.get(workflow, version).definition.params
            path = (*at, workflow, name)
            if name not in specs:
                msg = (
                    f"{workflow} v{version} has no param {name!r}{suggest(name, specs)} "
                    f"(params: {', '.join(specs) or 'none'})"
                )
                out.append(located.problem("XS112", "unknown-param", msg, path))
                break
            problem = param_problem(specs[name], value)
            if problem:
                msg = f"{workflow} v{version} param {name!r} = {value!r}: {problem}"
                out.append(located.problem("XS116", "bad-default", msg, path))
                break
    return out


def _unknown_workflow(workflow: str, loaded: list[str]) -> str:
    return (
        f"unknown workflow {workflow!r}{suggest(workflow, loaded)} (workflows: {', '.join(loaded)})"
    )
