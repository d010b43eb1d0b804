"""What of a misshapen workflow file can still be checked: the file repaired piece by piece, and
what the repairs leave unknown, so that one run reports the shape errors and the reference and
graph problems of the well-formed rest, never a problem that a repair itself caused.

A repair drops an unknown key, drops a value of the wrong shape (its default applies), stands a
stub in for a broken state, field, param or role (its name stays declared), and leaves out a
broken list entry (a transition, a timer, a read rule ...). Each repaired place is *lost*: the
checks that would judge what it held are skipped (:class:`Unsure`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .definition import IDENT, Definition
from .errors import DefinitionError, Problem
from .shape_errors import SCHEMA_CODE, ShapeError, schema_errors
from .yamlsafe import Located, Path

__all__ = ["Salvaged", "Unsure", "salvage"]

MAX_ROUNDS = 20
_STUBBED = {"states", "data", "params", "roles"}
_REQUIRED_TOP = {"id": "unnamed", "version": 1, "title": {"zh": "?"}, "states": {}}
_MISSING = object()


def _identity(path: Path) -> Path:
    return path


@dataclass
class Unsure:
    """What a file's repairs left unknown, for the checks to skip; empty for a sound file.

    ``origin`` turns a path in the repaired definition into the path in the file (entries left
    out shift the ones after them); ``lost`` holds the paths in the file whose content is
    unknown; ``shaped`` the paths of the shape problems; ``dropped`` the transitions left out,
    as the file writes them (their ``from`` and ``to`` still count for the graph).
    """

    origin: Callable[[Path], Path] = _identity
    lost: set[Path] = field(default_factory=set)
    shaped: set[Path] = field(default_factory=set)
    dropped: list[Any] = field(default_factory=list)

    def unknown(self, path: Path) -> bool:
        """Whether the content at ``path`` (of the repaired definition) is unknown."""
        at = self.origin(path)
        return any(at[: len(p)] == p for p in self.lost)

    def covered(self, path: Path) -> bool:
        """Whether a shape problem was reported at or above ``path``: no second problem there."""
        at = self.origin(path)
        return any(at[: len(p)] == p for p in self.shaped)

    def dropped_triggers(self) -> set[str] | None:
        """The triggers of the transitions left out; None when one of them is unreadable."""
        out = set()
        for raw in self.dropped:
            trigger = raw.get("trigger") if isinstance(raw, dict) else None
            if not isinstance(trigger, str):
                return None
            out.add(trigger)
        return out


class Salvaged(NamedTuple):
    """The definition as repaired (None when nothing could be), the shape problems, and what
    the repairs left unknown (None when the file needed none)."""

    definition: Definition | None
    problems: list[Problem]
    unsure: Unsure | None


def _get(data: Any, path: Path) -> Any:
    for part in path:
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not (in_list or (isinstance(data, dict) and part in data)):
            return _MISSING
        data = data[part]
    return data


class _Round:
    """The repairs of one round, in that round's coordinates."""

    def __init__(
        self, data: Any, source: Any, origin: Callable[[Path], Path], unsure: Unsure
    ) -> None:
        self.data = data
        self.source = source  # the file as written
        self.origin = origin
        self.unsure = unsure
        self.drops: dict[Path, set[int]] = {}
        self.repaired: list[Path] = []

    def lose(self, path: Path) -> None:
        self.unsure.lost.add(self.origin(path))

    def delete(self, path: Path) -> None:
        owner = _get(self.data, path[:-1])
        if isinstance(owner, dict):
            owner.pop(path[-1], None)
        self.repaired.append(path)
        self.lose(path)

    def fix(self, path: Path) -> None:
        """Repair the place at ``path``: stub it, leave it out, or drop it."""
        if not path:
            return
        owner = _get(self.data, path[:-1])
        if isinstance(path[-1], int):
            if isinstance(owner, list):
                self.drops.setdefault(path[:-1], set()).add(path[-1])
                if path[:-1] == ("transitions",):
                    self.unsure.dropped.append(_get(self.source, self.origin(path)))
                self.repaired.append(path)
                self.lose(path)
            return
        stub = self.stub(path)
        if stub is _MISSING:
            self.delete(path)
        elif isinstance(owner, dict):
            owner[path[-1]] = stub
            self.repaired.append(path)

    def stub(self, path: Path) -> Any:
        """A sound stand-in for a broken state, field, param, role or required top-level key."""
        name = path[-1]
        raw = _get(self.data, path)
        if len(path) == 1 and name in _REQUIRED_TOP:
            self.lose(path)
            return copy.deepcopy(_REQUIRED_TOP[str(name)])
        kind = path[0] if len(path) == 2 else "payload" if _is_payload_field(path) else None
        if kind not in (*_STUBBED, "payload"):
            return _MISSING
        if kind == "roles":
            return {"zh": str(name)}
        if kind == "states":
            flags = {k: raw.get(k) for k in ("initial", "final")} if isinstance(raw, dict) else {}
            if not isinstance(raw, dict) or any(not isinstance(v, bool) for v in flags.values()):
                self.lose(path)  # whether it is initial or final is unknown
            return {"label": str(name)} | {k: v for k, v in flags.items() if isinstance(v, bool)}
        self.lose(path)
        return {"type": "string", "default": ""} if kind == "params" else {"type": "object"}

    def names(self, path: Path, value: Any) -> None:
        """Leave out the keys of a section that are not lower_snake_case names."""
        if isinstance(value, dict):
            for key in [k for k in value if not re.match(IDENT, str(k))]:
                self.delete((*path, key))

    def apply_drops(self) -> Callable[[Path], Path]:
        """Leave out the dropped entries; the map from the new paths to this round's."""
        kept: dict[Path, list[int]] = {}
        for path in sorted(self.drops, key=len, reverse=True):
            items = _get(self.data, path)
            if not isinstance(items, list):
                continue
            kept[path] = [i for i in range(len(items)) if i not in self.drops[path]]
            items[:] = [items[i] for i in kept[path]]

        def back(path: Path) -> Path:
            out: list[str | int] = []
            for part in path:
                indices = kept.get(tuple(out))
                if isinstance(part, int) and indices is not None and part < len(indices):
                    part = indices[part]
                out.append(part)
            return tuple(out)

        return back


def _is_payload_field(path: Path) -> bool:
    return len(path) == 4 and path[0] == "transitions" and path[2] == "payload"


def _validate(data: Any) -> tuple[Definition | None, list[ShapeError]]:
    try:
        return Definition.model_validate(data), []
    except DefinitionError as e:
        cause = e.__cause__
        if cause is None:
            raise
        return None, schema_errors(cause)  # type: ignore[arg-type]


def salvage(located: Located) -> Salvaged:
    """Validate the file's shape; when it does not fit, repair it until it does.

    Returns the definition (repaired when needed), one problem per shape error (the ones of
    the file as written, and those the first errors hid, never one a repair caused), and what
    the repairs left unknown.
    """
    definition, errors = _validate(located.data)
    if definition is not None:
        return Salvaged(definition, [], None)
    unsure = Unsure()
    data = copy.deepcopy(located.data)
    maps: list[Callable[[Path], Path]] = []
    repaired: list[Path] = []  # in the file's coordinates

    def origin(path: Path) -> Path:
        for back in reversed(maps):
            path = back(path)
        return path

    problems: list[Problem] = []
    for first in [True, *[False] * MAX_ROUNDS]:
        step = _Round(data, located.data, origin, unsure)
        for err in errors:
            at = origin(err.path)
            follows = any(at[: len(r)] == r or at == r[:-1] for r in repaired)
            if first or not (follows or err.kind == "missing"):
                problems.append(located.problem(SCHEMA_CODE, "schema", err.message, at))
                unsure.shaped.add(at)
            if err.kind == "extra_forbidden":
                step.delete(err.path)
                meant = err.message.partition("did you mean '")[2].partition("'")[0]
                if meant:
                    step.lose((*err.path[:-1], meant))
            elif err.kind == "missing":
                step.fix(err.path[:-1])
            elif err.kind == "value_error" and len(err.path) == 1 and err.path[0] in _STUBBED:
                step.names(err.path, _get(data, err.path))
            else:
                step.fix(err.path)
        repaired += [origin(p) for p in step.repaired]
        if not step.repaired and not step.drops:
            break
        maps.append(step.apply_drops())
        unsure.origin = origin
        definition, errors = _validate(data)
        if definition is not None:
            return Salvaged(definition, problems, unsure)
    return Salvaged(None, problems, None)
