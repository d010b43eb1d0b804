"""The workflows a walk runs: the bundled ones and the files being explored (a file of a
bundled workflow's id and version takes that workflow's place)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml

from xieshang import Registry
from xieshang.workflows import bundled_files

__all__ = ["registry_for", "workflow_of"]


def workflow_of(path: str | Path) -> tuple[str, int] | None:
    """The id and version a workflow file declares, if it declares them plainly."""
    try:
        found = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(found, dict) or not isinstance(found.get("id"), str):
        return None
    version = found.get("version")
    return found["id"], version if isinstance(version, int) else 1


def registry_for(files: Iterable[str | Path]) -> Registry:
    """The bundled workflows and ``files``. Raises DefinitionError listing every problem."""
    mine = [Path(f).resolve() for f in files]
    taken = {key for key in map(workflow_of, mine) if key is not None}
    texts = [
        (str(f), f.read_text(encoding="utf-8"))
        for f in bundled_files()
        if f.resolve() not in mine and workflow_of(f) not in taken
    ]
    texts += [(str(f), f.read_text(encoding="utf-8")) for f in mine]
    return Registry.from_texts(texts)
