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
MAX_NODES = 50_000

Path = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader whose booleans are only true/false (YAML 1.2 core schema)."""


# libyaml's parser when PyYAML was built with it (about ten times faster); the same resolvers
# and constructors, the same node marks (lines), and a nesting limit of its own
_CLoader: type[Any] | None = None
if getattr(yaml, "__with_libyaml__", False):

    class _CLoaderClass(yaml.CSafeLoader):
        """CSafeLoader whose booleans are only true/false."""

    _CLoader = _CLoaderClass

# Neither YAML 1.1 booleans nor timestamps: dates are ISO text in xieshang ('2024-10-01').
_DROPPED = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp"}
for _cls in (_Loader, _CLoader):
    if _cls is None:
        continue
    _cls.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in _DROPPED]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _cls.add_implicit_resolver(
        "tag:yaml.org,2002:bool",
        re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
        list("tTfF"),
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
    if not isinstance(text, str | bytes):
        msg = f"a workflow file is text or bytes, not {type(text).__name__}"
        return None, [Problem("XS001", "yaml-syntax", msg, "", file, None)]
    raw = text.encode() if isinstance(text, str) else text
    if len(raw) > MAX_BYTES:
        msg = f"file is {len(raw)} bytes; the limit is {MAX_BYTES}"
        return None, [Problem("XS002", "too-large", msg, "", file, 1)]
    try:
        loader = (_CLoader or _Loader)(raw.decode("utf-8", errors="replace"))
    except yaml.YAMLError as e:
        return None, [_syntax(e, file)]
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as e:
        if "maximum nesting depth" in str(e):  # libyaml's own limit
            msg = f"nesting far deeper than the limit of {MAX_DEPTH}"
            return None, [Problem("XS002", "too-deep", msg, "", file, _line(e))]
        return None, [_syntax(e, file)]
    except RecursionError:
        msg = f"nesting far deeper than the limit of {MAX_DEPTH}"
        return None, [Problem("XS002", "too-deep", msg, "", file, None)]
    finally:
        loader.dispose()
    if node is None:
        return None, [Problem("XS001", "yaml-syntax", "the file is empty", "", file, 1)]
    lines: dict[Path, int] = {}
    problems: list[Problem] = []
    budget = [MAX_NODES]
    try:
        data = _build(loader, node, (), lines, problems, file, budget)
    except _TooMany:
        msg = f"more than {MAX_NODES} values once aliases are expanded"
        return None, [Problem("XS002", "too-large", msg, "", file, None)]
    return Located(data, lines, file), problems


_PLAIN_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:omap"}


class _TooMany(Exception):
    """Internal: the node budget ran out (an alias bomb, or a giant file)."""


def _line(e: Exception) -> int | None:
    mark = getattr(e, "problem_mark", None)
    return mark.line + 1 if mark is not None else None


def _syntax(e: Exception, file: str, node: yaml.Node | None = None) -> Problem:
    mark = getattr(e, "problem_mark", None) or (node.start_mark if node is not None else None)
    line = mark.line + 1 if mark is not None else None
    reason = getattr(e, "problem", None) or str(e).splitlines()[0]
    return Problem("XS001", "yaml-syntax", f"not valid YAML: {reason}", "", file, line)


def _construct(loader: _Loader, node: yaml.Node, file: str, problems: list[Problem]) -> Any:
    try:
        return loader.construct_object(node, deep=True)
    except Exception as e:
        problems.append(_syntax(e, file, node))
        return None


def _build(
    loader: _Loader,
    node: yaml.Node,
    path: Path,
    lines: dict[Path, int],
    problems: list[Problem],
    file: str,
    budget: list[int],
) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooMany
    lines.setdefault(path, node.start_mark.line + 1)
    if len(path) > MAX_DEPTH:
        problems.append(
            Problem(
                "XS002",
                "too-deep",
                f"nesting deeper than {MAX_DEPTH}",
                format_path(path),
                file,
                lines[path],
            )
        )
        return None
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag not in _PLAIN_TAGS:
        problems.append(
            Problem(
                "XS001",
                "yaml-syntax",
                f"unsupported YAML tag {node.tag!r}",
                format_path(path),
                file,
                lines[path],
            )
        )
        return None
    if isinstance(node, yaml.MappingNode):
        try:
            loader.flatten_mapping(node)
        except yaml.YAMLError as e:
            problems.append(_syntax(e, file, node))
            return None
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _construct(loader, key_node, file, problems)
            if not isinstance(key, str | int):
                key = str(key)
            key_path = (*path, str(key))
            if key in out:
                problems.append(
                    Problem(
                        "XS003",
                        "duplicate-key",
                        f"duplicate key {key!r}",
                        format_path(key_path),
                        file,
                        key_node.start_mark.line + 1,
                    )
                )
                continue
            lines[key_path] = key_node.start_mark.line + 1
            out[key] = _build(loader, value_node, key_path, lines, problems, file, budget)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(loader, item, (*path, i), lines, problems, file, budget)
            for i, item in enumerate(node.value)
        ]
    return _construct(loader, node, file, problems)
