"""Safe YAML reading for workflow files: no YAML 1.1 booleans, size limits, a line for every path.

YAML 1.1 reads ``on``, ``off``, ``yes`` and ``no`` as booleans, which silently turns a state
called ``on`` into ``True``; here only ``true`` and ``false`` are booleans. Duplicate keys are
problems, not silent overwrites. Every value keeps the line it came from, keyed by its path
(``("transitions", 3, "to")``), so later stages can point into the file.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from .errors import Problem

__all__ = ["MAX_BYTES", "MAX_DEPTH", "Located", "Path", "format_path", "read_yaml"]

MAX_BYTES = 1_000_000
MAX_DEPTH = 32

Path = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader whose booleans are only true/false (YAML 1.2 core schema)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def format_path(path: Path) -> str:
    """``("transitions", 3, "to")`` -> ``transitions[3].to``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class Located:
    """The plain data of a YAML document and the line of every path in it."""

    __slots__ = ("data", "file", "lines")

    def __init__(self, data: Any, lines: dict[Path, int], file: str) -> None:
        self.data = data
        self.lines = lines
        self.file = file

    def line_of(self, path: Path) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]

    def problem(self, code: str, name: str, message: str, path: Path) -> Problem:
        return Problem(code, name, message, format_path(path), self.file, self.line_of(path))


def read_yaml(text: str | bytes, file: str = "") -> tuple[Located | None, list[Problem]]:
    """Parse one YAML document. Returns the located data, or None and the problems."""
    raw = text.encode() if isinstance(text, str) else text
    if len(raw) > MAX_BYTES:
        msg = f"file is {len(raw)} bytes; the limit is {MAX_BYTES}"
        return None, [Problem("XS002", "too-large", msg, "", file, 1)]
    loader = _Loader(raw.decode("utf-8", errors="replace"))
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(e, "problem", None) or str(e)
        return None, [Problem("XS001", "yaml-syntax", f"not valid YAML: {reason}", "", file, line)]
    finally:
        loader.dispose()
    if node is None:
        return None, [Problem("XS001", "yaml-syntax", "the file is empty", "", file, 1)]
    lines: dict[Path, int] = {}
    problems: list[Problem] = []
    data = _build(loader, node, (), lines, problems, file)
    return Located(data, lines, file), problems


def _build(
    loader: _Loader,
    node: yaml.Node,
    path: Path,
    lines: dict[Path, int],
    problems: list[Problem],
    file: str,
) -> Any:
    lines[path] = node.start_mark.line + 1
    if len(path) > MAX_DEPTH:
        problems.append(
            Problem("XS002", "too-deep", f"nesting deeper than {MAX_DEPTH}", format_path(path),
                    file, lines[path])
        )
        return None
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int):
                key = str(key)
            key_path = (*path, str(key))
            if key in out:
                problems.append(
                    Problem("XS003", "duplicate-key", f"duplicate key {key!r}",
                            format_path(key_path), file, key_node.start_mark.line + 1)
                )
                continue
            out[key] = _build(loader, value_node, key_path, lines, problems, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(loader, item, (*path, i), lines, problems, file)
            for i, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)
