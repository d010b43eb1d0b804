"""Workflow files are read with libyaml's parser when PyYAML has it: the same data, the same
line for every path, and the same problems as the pure-Python reader."""

from __future__ import annotations

import pytest
import yaml

from xieshang import yamlsafe
from xieshang.workflows import BUNDLED_DIR

pytestmark = pytest.mark.skipif(
    not getattr(yaml, "__with_libyaml__", False), reason="PyYAML without libyaml"
)


def both(text: str) -> tuple[tuple[object, object], tuple[object, object]]:
    fast, fast_problems = yamlsafe.read_yaml(text, "f.yaml")
    fast_class = yamlsafe._CLoader
    yamlsafe._CLoader = None
    try:
        slow, slow_problems = yamlsafe.read_yaml(text, "f.yaml")
    finally:
        yamlsafe._CLoader = fast_class
    return (
        (fast and (fast.data, fast.lines), [(p.code, p.path, p.line) for p in fast_problems]),
        (slow and (slow.data, slow.lines), [(p.code, p.path, p.line) for p in slow_problems]),
    )


def test_the_fast_reader_is_the_default() -> None:
    assert yamlsafe._CLoader is not None and issubclass(yamlsafe._CLoader, yaml.CSafeLoader)


@pytest.mark.parametrize("path", sorted(BUNDLED_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_bundled_workflow_reads_the_same_with_either_parser(path: object) -> None:
    fast, slow = both(path.read_text(encoding="utf-8"))  # type: ignore[attr-defined]
    assert fast == slow and fast[1] == []


@pytest.mark.parametrize(
    "text",
    [
        "a: on\nb: yes\nc: true\nd: 2024-10-01\n",  # YAML 1.1 booleans and dates stay text
        "a: 1\na: 2\n",  # a duplicate key, at its line
        "base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n",  # merge keys
        "a: !!python/object:os.system x\n",  # no Python objects
        "a: [1, 2\n",  # unclosed
        "a:\n" + "".join("  " * k + f"k{k}:\n" for k in range(1, 40)) + "  " * 40 + "v: 1\n",
        "a: " + "[" * 5000 + "]" * 5000 + "\n",  # past either parser's own nesting limit
    ],
    ids=["booleans", "duplicate", "merge", "tag", "unclosed", "deep-block", "deep-flow"],
)
def test_problems_and_values_are_the_same_with_either_parser(text: str) -> None:
    fast, slow = both(text)
    assert fast[0] == slow[0]
    assert [(code, path) for code, path, _ in fast[1]] == [(c, p) for c, p, _ in slow[1]]
