"""The deployment's settings file (``--config`` / ``XIESHANG_CONFIG``): read, checked against
the loaded workflows, before any database is opened. See ``docs/deployment.md``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from xieshang import DeploymentConfig, Registry, Usage, load_deployment

__all__ = ["load_config"]


def load_config(
    path: str | os.PathLike[str] | None,
    registry: Registry,
    pins: Mapping[str, Mapping[str, int]] | None = None,
) -> DeploymentConfig | None:
    """The settings file at ``path`` (None: there is none), checked against ``registry``
    and ``pins``.

    Raises:
        DeploymentError: every problem of the file, each at its line.
        Usage: the file cannot be read.
    """
    if path is None:
        return None
    file = Path(path)
    try:
        text = file.read_bytes()
    except OSError as e:
        raise Usage(
            f"cannot read the deployment settings file {str(file)!r}: {e.strerror or e}",
            "--config",
        ) from None
    return load_deployment(text, str(file), registry, pins=pins)
