"""The bundled workflow definitions and the loader that finds them and a deployment's own."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from xieshang import DutyRules, Registry, load_duties

__all__ = [
    "BUNDLED_DIR",
    "DUTIES_FILE",
    "bundled",
    "bundled_files",
    "default_duties",
    "load_registry",
    "workflow_files",
]

BUNDLED_DIR = Path(__file__).parent
DUTIES_FILE = BUNDLED_DIR / "duties" / "default.yaml"  # the members' duty rules by default
ENV_DIRS = "XIESHANG_WORKFLOWS"


def bundled_files() -> list[Path]:
    """The YAML files shipped with xieshang."""
    return sorted(BUNDLED_DIR.glob("*.yaml"))


def workflow_files(dirs: Iterable[str | os.PathLike[str]] = ()) -> list[Path]:
    """The bundled files, then every ``*.yaml`` / ``*.yml`` in ``dirs`` and $XIESHANG_WORKFLOWS."""
    extra = [Path(d) for d in dirs]
    extra += [Path(p) for p in os.environ.get(ENV_DIRS, "").split(os.pathsep) if p]
    files = bundled_files()
    for d in extra:
        if d.is_file():
            files.append(d)
        else:
            files += sorted([*d.glob("*.yaml"), *d.glob("*.yml")])
    seen: set[Path] = set()
    unique = []
    for f in files:
        if f.resolve() not in seen:  # the same directory named twice is loaded once
            seen.add(f.resolve())
            unique.append(f)
    return unique


def load_registry(
    dirs: Iterable[str | os.PathLike[str]] = (),
    *,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> Registry:
    """A registry of the bundled workflows plus those in ``dirs`` and ``$XIESHANG_WORKFLOWS``.

    Raises:
        DefinitionError: every problem of every file; a workflow id defined in two files names
            both files.
    """
    return Registry.from_texts(
        ((str(f), f.read_text(encoding="utf-8")) for f in workflow_files(dirs)), params=params
    )


def bundled() -> Registry:
    """A registry of the bundled workflows only."""
    return Registry.from_texts((str(f), f.read_text(encoding="utf-8")) for f in bundled_files())


def default_duties(registry: Registry | None = None) -> DutyRules:
    """The bundled members' duty rules, checked against ``registry`` (the bundled workflows by
    default).

    Raises:
        DutiesFileError: the file does not fit the workflows (every problem listed).
    """
    text = DUTIES_FILE.read_text(encoding="utf-8")
    return load_duties(text, str(DUTIES_FILE), registry if registry is not None else bundled())
