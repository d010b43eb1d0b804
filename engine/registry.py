"""The registry: the compiled workflows an engine can run, by id and by content hash."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from typing import Any

from .checker import known_workflow
from .compiler import CompiledWorkflow
from .definition import Definition
from .errors import DefinitionError, NotFound, Problem
from .loading import compile_definition, read_definition
from .records import canonical_json
from .salvage import Unsure
from .yamlsafe import Located

__all__ = ["Registry"]


class Registry:
    """Compiled workflows: the newest version of each id, and every version by content hash."""

    def __init__(self, workflows: Iterable[CompiledWorkflow] = ()) -> None:
        self._latest: dict[str, CompiledWorkflow] = {}
        self._by_hash: dict[str, CompiledWorkflow] = {}
        for wf in workflows:
            self.add(wf)

    @classmethod
    def from_texts(
        cls,
        files: Iterable[tuple[str, str | bytes]],
        *,
        params: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Registry:
        """Load many workflow files at once; every problem of every file is reported together.

        Files with the same names, bytes and params as an earlier call are not compiled again:
        the new registry holds the workflows compiled then (a process that builds many
        engines pays once).

        Args:
            files: (file name, YAML text) pairs.
            params: per workflow id, deployment overrides of its params.

        Raises:
            DefinitionError: listing the problems of all files, including ids defined twice
                (naming both files), spawns and updates of workflows (or fields) that none
                of the files defines, and ``fire_on`` triggers that the named workflow does not
                let the system fire.
        """
        texts = tuple((str(file), text) for file, text in files)
        try:
            key = canonical_json(params or {})
            hash(texts)
        except (TypeError, ValueError):  # params not JSON, or a text not text: not remembered
            return cls(_compile_texts(texts, params))
        return cls(_remembered(texts, key))

    def add(self, wf: CompiledWorkflow, *, latest: bool = True) -> None:
        """Register a compiled workflow; with ``latest=False`` only by hash (a pinned old one)."""
        self._by_hash[wf.hash] = wf
        current = self._latest.get(wf.id)
        if latest and (current is None or current.definition.version <= wf.definition.version):
            self._latest[wf.id] = wf

    def get(self, workflow: str, version: int | None = None) -> CompiledWorkflow:
        """The newest version of ``workflow`` (or the given version). Raises NotFound."""
        wf = self._latest.get(workflow)
        if wf is not None and version is not None and wf.definition.version != version:
            wf = next(
                (
                    w
                    for w in self._by_hash.values()
                    if w.id == workflow and w.definition.version == version
                ),
                None,
            )
        if wf is None:
            raise NotFound(
                "workflow",
                workflow if version is None else f"{workflow} v{version}",
                allowed=self.ids(),
            )
        return wf

    def for_start(
        self, workflow: str, org: str, pins: Mapping[str, Mapping[str, int]] | None = None
    ) -> CompiledWorkflow:
        """The version a new instance of ``workflow`` for ``org`` starts on: the one ``pins``
        names for that org (``{org: {workflow: version}}``), else the newest.

        Raises:
            NotFound: no such workflow, or the pinned version is not loaded (naming the pin and
                the versions that are).
        """
        pinned = (pins or {}).get(org, {}).get(workflow)
        if pinned is None:
            return self.get(workflow)
        try:
            return self.get(workflow, pinned)
        except NotFound:
            loaded = [f"{workflow} v{v}" for v in self.version_numbers(workflow)]
            raise NotFound(
                "workflow", f"{workflow} v{pinned} (pinned for org {org!r})", allowed=loaded
            ) from None

    def for_version(self, workflow: str, version: int, org: str) -> CompiledWorkflow:
        """The compiled ``workflow`` at ``version`` that ``org``'s instances run on (the same
        for every org here; deployment settings give an org its own params). Raises NotFound."""
        return self.get(workflow, version)

    def version_numbers(self, workflow: str) -> list[int]:
        """The versions of ``workflow`` this registry holds, oldest first."""
        return sorted({w.definition.version for w in self._by_hash.values() if w.id == workflow})

    def by_hash(self, content_hash: str) -> CompiledWorkflow | None:
        return self._by_hash.get(content_hash)

    def versions(self) -> list[CompiledWorkflow]:
        """Every compiled workflow, the pinned old versions too, by id then version."""
        return sorted(self._by_hash.values(), key=lambda w: (w.id, w.definition.version, w.hash))

    def ids(self) -> list[str]:
        return sorted(self._latest)

    def __iter__(self) -> Any:
        return iter(self._latest.values())

    def __len__(self) -> int:
        return len(self._latest)


@functools.lru_cache(maxsize=32)
def _remembered(
    texts: tuple[tuple[str, str | bytes], ...], params: str
) -> tuple[CompiledWorkflow, ...]:
    """The workflows compiled from ``texts`` with ``params`` (their canonical JSON): files with
    the same names, bytes and params as before are not compiled again, so a process that builds
    many engines (a server's workers, a test suite) pays once. Problems are not remembered."""
    return _compile_texts(texts, json.loads(params))


def _compile_texts(
    files: tuple[tuple[str, str | bytes], ...],
    params: Mapping[str, Mapping[str, Any]] | None,
) -> tuple[CompiledWorkflow, ...]:
    """Every file compiled, or a DefinitionError with the problems of all of them."""
    problems: list[Problem] = []
    parsed: list[tuple[Definition, Located, str, Unsure | None]] = []
    seen: dict[tuple[str, int], str] = {}
    for file, text in files:
        definition, located, found, unsure = read_definition(text, file)
        problems += found
        if definition is None or located is None:
            continue
        key = (definition.id, definition.version)
        # a broken id or version cannot be the same as another file's
        named = unsure is None or not (unsure.unknown(("id",)) or unsure.unknown(("version",)))
        if named and key in seen:
            problems.append(
                located.problem(
                    "XS117",
                    "duplicate-id",
                    f"workflow {definition.id!r} version {definition.version} is also "
                    f"defined in {seen[key]}",
                    ("id",),
                )
            )
            continue
        if named:
            seen[key] = file
        source = str(text if isinstance(text, str) else text.decode())
        parsed.append((definition, located, source, unsure))
    # what a file may name of another workflow is what that workflow's newest version has
    newest = sorted(parsed, key=lambda p: p[0].version)
    known = {d.id: known_workflow(d, complete=unsure is None) for d, _, _, unsure in newest}
    compiled: list[CompiledWorkflow] = []
    for definition, located, source, unsure in parsed:
        try:
            compiled.append(
                compile_definition(
                    definition,
                    located=located,
                    params=(params or {}).get(definition.id),
                    known_workflows=known,
                    source=source,
                    unsure=unsure,
                )
            )
        except DefinitionError as e:
            problems += e.problems
    if problems:
        raise DefinitionError(problems)
    return tuple(compiled)
