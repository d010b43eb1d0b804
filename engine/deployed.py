"""A registry under a deployment's settings: each org's new instances start on its own compiled
variant of a workflow (its version, its params), registered by content hash.

Each workflow is compiled once per distinct set of params in force (the deployment-wide ones
under an org's own). The params are written into the definition (as its params' defaults), so
they are part of its content hash and of the definition body the store keeps: an instance keeps
the params it started with whatever the settings say later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .compiler import CompiledWorkflow
from .deployment import DeploymentConfig, DeploymentError
from .deployment_checks import uses
from .errors import DefinitionError, Forbidden, Problem
from .loading import compile_definition
from .records import canonical_json
from .registry import Registry
from .rows import START
from .yamlsafe import format_path

__all__ = ["DeployedRegistry", "deploy"]


def deploy(
    registry: Registry,
    config: DeploymentConfig,
    pins: Mapping[str, Mapping[str, int]] | None = None,
) -> DeployedRegistry:
    """``registry`` under ``config``, with ``pins`` (``XIESHANG_PINS``) merged into the file's
    versions.

    Raises:
        DeploymentError: a pin names another version than the file for the same org and
            workflow (XS157), or a variant does not compile (at the params that made it).
    """
    return DeployedRegistry(registry, config, pins or {})


class DeployedRegistry(Registry):
    """The workflows of ``base`` under ``config``: :meth:`for_start` resolves an org to the
    variant its new instances start on; :meth:`get` gives the deployment-wide one."""

    def __init__(
        self,
        base: Registry,
        config: DeploymentConfig,
        pins: Mapping[str, Mapping[str, int]],
    ) -> None:
        super().__init__()
        self.config = config
        self.base = base
        self._variants: dict[tuple[str, str, str], CompiledWorkflow] = {}
        self._wide: dict[tuple[str, int], CompiledWorkflow] = {}
        self.pins = _merged(config, pins)
        problems: list[Problem] = []
        for wf in base.versions():
            # an old version no org starts on may lack a param the file sets: it keeps its own
            wide = {
                k: v for k, v in config.params.get(wf.id, {}).items() if k in wf.definition.params
            }
            done = self._variant(wf, wide, ("params", wf.id), problems)
            if done is not None:
                self._wide[(wf.id, wf.definition.version)] = done
                self.add(done, latest=base.get(wf.id).hash == wf.hash)
        for i, org in enumerate(config.orgs):
            for workflow in self.allowed(org.id) or base.ids():
                if workflow not in base.ids() or not org.params.get(workflow):
                    continue
                wf = self._base_for(org.id, workflow)
                params = config.params_for(org.id, workflow)
                self._variant(wf, params, ("orgs", i, "params", workflow), problems)
        if problems:
            raise DeploymentError(problems, file=config.file)

    def _base_for(self, org: str, workflow: str) -> CompiledWorkflow:
        version = self.pins.get(org, {}).get(workflow)
        return self.base.get(workflow) if version is None else self.base.get(workflow, version)

    def _variant(
        self,
        wf: CompiledWorkflow,
        params: Mapping[str, Any],
        at: tuple[str | int, ...],
        problems: list[Problem],
    ) -> CompiledWorkflow | None:
        """``wf`` compiled with ``params`` (once a distinct set), registered by its hash."""
        if not params:
            return wf
        key = (wf.hash, wf.id, canonical_json(dict(params)))
        found = self._variants.get(key)
        if found is not None:
            return found
        try:
            done = compile_definition(wf.definition, params=params, source=wf.source)
        except DefinitionError as e:
            line = self.config.line_of(at)
            problems += [
                Problem(p.code, p.name, p.message, format_path(at), self.config.file, line)
                for p in e.problems
            ]
            return None
        self._variants[key] = done
        self.add(done, latest=False)
        return done

    def allowed(self, org: str) -> list[str] | None:
        """The workflows ``org``'s people may start (None: every loaded one)."""
        found = self.config.org(org)
        if found is None:
            return [] if self.config.strict else None
        if found.workflows is None:
            return None
        return sorted(uses(self.base, found.workflows))

    def get(self, workflow: str, version: int | None = None) -> CompiledWorkflow:
        """The deployment-wide variant of ``workflow`` (the newest, or ``version``)."""
        if version is not None and (workflow, version) in self._wide:
            return self._wide[(workflow, version)]
        return super().get(workflow, version)

    def for_version(self, workflow: str, version: int, org: str) -> CompiledWorkflow:
        """``workflow`` at ``version`` with the params ``org`` runs it with (what a migration
        of that org's instances moves them to)."""
        own = self.config.org(org)
        if own is None or not own.params.get(workflow):
            return self.get(workflow, version)
        return self._own(self.base.get(workflow, version), org, workflow)

    def _own(self, base: CompiledWorkflow, org: str, workflow: str) -> CompiledWorkflow:
        problems: list[Problem] = []
        at = ("orgs", self.config.index_of(org), "params", workflow)
        done = self._variant(base, self.config.params_for(org, workflow), at, problems)
        if done is None:
            raise DeploymentError(problems, file=self.config.file)
        return done

    def for_start(
        self, workflow: str, org: str, pins: Mapping[str, Mapping[str, int]] | None = None
    ) -> CompiledWorkflow:
        """The variant a new instance of ``workflow`` for ``org`` starts on.

        Raises:
            Forbidden: the org may not start ``workflow`` (naming those it may).
            NotFound: no such workflow, or its pinned version is not loaded.
        """
        allowed = self.allowed(org)
        if allowed is not None and workflow not in allowed:
            where = f" ({self.config.file})" if self.config.file else ""
            why = (
                "is not an org of the deployment settings, which are strict"
                if self.config.org(org) is None
                else "does not use it"
            )
            raise Forbidden(
                f"org {org!r} may not start {workflow!r}: it {why}{where}; it may start: "
                f"{', '.join(allowed) or 'nothing'}",
                trigger=START,
                actor="",
                allowed=allowed,
                org=org,
            )
        merged = {o: dict(w) for o, w in (pins or {}).items()}
        for o, by_wf in self.pins.items():
            merged.setdefault(o, {}).update(by_wf)
        wf = super().for_start(workflow, org, merged)
        own = self.config.org(org)
        if own is None or not own.params.get(workflow):
            return wf  # the deployment-wide variant
        return self._own(self.base.get(workflow, wf.definition.version), org, workflow)


def _merged(
    config: DeploymentConfig, pins: Mapping[str, Mapping[str, int]]
) -> dict[str, dict[str, int]]:
    out = {o: dict(w) for o, w in pins.items()}
    problems: list[Problem] = []
    for i, org in enumerate(config.orgs):
        for workflow, version in (org.workflows or {}).items():
            if not isinstance(version, int):
                continue
            pinned = out.get(org.id, {}).get(workflow)
            if pinned is not None and pinned != version:
                msg = (
                    f"XIESHANG_PINS pins {org.id}:{workflow} to version {pinned}, this file to "
                    f"version {version}; name one version in one place"
                )
                at = ("orgs", i, "workflows", workflow)
                line = config.line_of(at)
                path = f"orgs[{i}].workflows.{workflow}"
                problems.append(Problem("XS157", "pin-conflict", msg, path, config.file, line))
            out.setdefault(org.id, {})[workflow] = version
    if problems:
        raise DeploymentError(problems, file=config.file)
    return out
