"""The ``xieshang`` command line: check and draw workflow files, run and audit instances.

Exit codes: 0 done; 1 the engine refused or found a problem (a typed :class:`XieshangError`,
an invalid workflow file, a broken history); 2 the command line itself is wrong (bad JSON,
a malformed actor, a missing file, a missing graphviz binary). With ``--json`` the result, or
``{"error": {...}}``, is written to stdout as JSON; messages for people go to stderr.
"""

from __future__ import annotations

from . import audit, config, explore, files, inbox, instances, worker  # noqa: F401 - each adds its commands
from .app import PLUGINS, JsonFlag, _state, app
from .output import _emit_json, _err, _out, _reporting

__all__ = ["app", "main"]
__all__ += ["PLUGINS", "JsonFlag", "_emit_json", "_err", "_out", "_reporting", "_state"]


def main() -> None:
    """The console script's entry point."""
    app()
