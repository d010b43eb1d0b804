"""The loader's checks of soft rules: each ``warn:`` entry of a transition, compiled.

An entry's condition and message placeholders may read ``data``, ``payload``, ``actor``,
``instance``, ``params``, ``now`` and ``parent``, never ``children`` or ``siblings``: a replay
re-runs the condition over the history alone and must give the warnings the row recorded (the
warnings of an entry that reads ``parent`` are taken as recorded). Problems: a bad
expression (XS120-XS123), a code used twice in one transition (XS125), a mode that is not
``warn``, ``refuse`` or a string param holding one of them (XS112, XS126).
"""

from __future__ import annotations

from .checker import Checker, suggest
from .compiler import CompiledWarning
from .definition import TransitionSpec
from .yamlsafe import Path

__all__ = ["MODES", "compile_warnings"]

MODES = ("warn", "refuse")
_NAMES = ["data", "payload", "actor", "instance", "params", "now", "parent"]


def compile_warnings(checker: Checker, i: int, t: TransitionSpec) -> tuple[CompiledWarning, ...]:
    """The compiled ``warn:`` entries of ``transitions[i]``; a problem for each fault."""
    _, members = checker.names(t)
    seen: dict[str, int] = {}
    out: list[CompiledWarning] = []
    for j, entry in enumerate(t.warn):
        path: Path = ("transitions", i, "warn", j)
        if entry.code in seen:
            checker.add(
                "XS125",
                "duplicate-warning",
                f"warning code {entry.code!r} is already used by warn[{seen[entry.code]}] of "
                "this transition",
                (*path, "code"),
            )
        seen.setdefault(entry.code, j)
        when = checker.expr(entry.when, (*path, "when"), _NAMES, members)
        parts = checker.placeholders(entry.message, (*path, "message"), _NAMES, members)
        refuse = _refuses(checker, entry.mode, (*path, "mode"))
        if when is not None and refuse is not None:
            out.append(CompiledWarning(entry.code, when, entry.message, refuse, parts))
    return tuple(out)


def _refuses(checker: Checker, mode: str, path: Path) -> bool | None:
    """Whether the mode refuses the step in this deployment; None (and a problem) if unclear."""
    if mode in MODES:
        return mode == "refuse"
    if not mode.startswith("params."):
        checker.add(
            "XS126",
            "bad-warn-mode",
            f"mode {mode!r} is neither 'warn', 'refuse' nor 'params.NAME'",
            path,
        )
        return None
    name = mode.removeprefix("params.")
    spec = checker.d.params.get(name)
    if checker.unknown("params", name):
        return None
    if spec is None:
        checker.add(
            "XS112",
            "unknown-param",
            f"unknown param {name!r}" + suggest(name, checker.d.params),
            path,
        )
        return None
    value = checker.param_values.get(name, spec.default)
    if spec.type != "string" or value not in MODES:
        checker.add(
            "XS126",
            "bad-warn-mode",
            f"param {name!r} is the {spec.type} {value!r}; a mode param is a string, "
            "'warn' or 'refuse'",
            path,
        )
        return None
    return bool(value == "refuse")
