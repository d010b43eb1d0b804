"""The ``cel`` package, loaded without its interactive shell.

The package's ``__init__`` imports its command-line shell (``cel.cli``: prompt_toolkit, pygments,
rich), about 0.4 s of a command's start, and the engine never uses it. While the package loads,
an empty module stands in for the shell; it is then forgotten, so ``import cel.cli`` and
``python -m cel`` still load the real one.
"""

from __future__ import annotations

import sys
import types

__all__: list[str] = []


def _load_without_shell() -> None:
    if "cel" in sys.modules:
        return
    shell = "cel.cli"
    stand_in = types.ModuleType(shell)
    present = shell in sys.modules
    if not present:
        sys.modules[shell] = stand_in
    try:
        import cel
    finally:
        if not present and sys.modules.get(shell) is stand_in:
            del sys.modules[shell]
    if getattr(cel, "cli", None) is stand_in:
        delattr(cel, "cli")


_load_without_shell()
