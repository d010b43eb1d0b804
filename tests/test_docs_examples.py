"""The examples of the process owners' guides load, compile, evaluate and run as written.

Every fenced ``yaml`` block of ``docs/*.md`` that is a whole workflow file loads with no problem
and every other one parses as YAML; the worked example of ``docs/workflows.md`` loads and runs
to its final state; every CEL example of ``docs/expressions.md`` compiles in the place it is
shown for, gives the result its ``// →`` comment states over the page's sample, and each one
marked ``// ✗`` really fails.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from xieshang import load_definition
from xieshang.expressions import (
    ACTOR_FIELDS,
    INSTANCE_FIELDS,
    ExpressionError,
    compile_expression,
    date_functions,
    new_context,
)

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
EXAMPLES = ROOT / "docs" / "examples"
EXPRESSIONS = ROOT / "docs" / "expressions.md"
FENCE = re.compile(r"^```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```", re.M | re.S)
# an example line: the expression, then `// → result` (a CEL literal) or `// ✗ why`
EXAMPLE = re.compile(r"^(?P<expr>.*?)(?:\s+//\s*(?P<mark>→|✗)\s*(?P<rest>.*))?$")


def blocks(doc: Path, lang: str) -> list[str]:
    """The bodies of the fenced blocks of ``lang`` in ``doc``, in order."""
    text = doc.read_text(encoding="utf-8")
    return [m["body"] for m in FENCE.finditer(text) if m["lang"] == lang]


def yaml_blocks() -> list[tuple[str, str]]:
    return [
        (f"{doc.name}#{i}", body)
        for doc in DOCS
        for i, body in enumerate(blocks(doc, "yaml"))
    ]


def is_workflow(data: Any) -> bool:
    return isinstance(data, dict) and "id" in data and ("states" in data or "transitions" in data)


# -- yaml blocks ----------------------------------------------------------------------------


@pytest.mark.parametrize(("where", "body"), yaml_blocks(), ids=[w for w, _ in yaml_blocks()])
def test_every_yaml_block_parses_and_a_whole_workflow_loads(where: str, body: str) -> None:
    """A block that is a whole workflow file loads with no problem; an excerpt parses as YAML."""
    data = yaml.safe_load(body)
    assert data is not None, f"{where} is empty"
    if is_workflow(data):
        compiled = load_definition(body, where, known_workflows=None)
        assert compiled.id == data["id"]


# -- the CEL examples of docs/expressions.md ------------------------------------------------


def sample() -> dict[str, Any]:
    """The page's sample, its timestamps as timestamps."""
    (text,) = blocks(EXPRESSIONS, "json")
    values: dict[str, Any] = json.loads(text)
    values["now"] = datetime.fromisoformat(values["now"])
    for key in ("created_at", "entered_at"):
        values["instance"][key] = datetime.fromisoformat(values["instance"][key])
    return values


def cel_examples() -> list[tuple[str, str | None, str]]:
    """Each example line of the page's ``cel`` blocks: (expression, mark, rest)."""
    out = []
    for body in blocks(EXPRESSIONS, "cel"):
        for line in body.splitlines():
            if not line.strip() or line.lstrip().startswith("//"):
                continue
            m = EXAMPLE.match(line.strip())
            assert m is not None
            out.append((m["expr"].strip(), m["mark"], (m["rest"] or "").strip()))
    return out


INSPECTION = (EXAMPLES / "member_inspection.yaml").read_text(encoding="utf-8")
DEFINITION = yaml.safe_load(INSPECTION)
HOLD = next(t for t in DEFINITION["transitions"] if t["trigger"] == "hold_inspection")
MEMBERS: dict[str, Any] = {
    "data": set(DEFINITION["data"]),
    "payload": set(HOLD["payload"]),
    "params": set(DEFINITION["params"]),
    "actor": ACTOR_FIELDS,
    "instance": INSTANCE_FIELDS,
    "item": None,
}
FUNCTIONS = date_functions("cn_official")


def evaluate(source: str, variables: dict[str, Any]) -> Any:
    compiled = compile_expression(source, names=list(variables), members=MEMBERS)
    return compiled.run(new_context(variables, FUNCTIONS))


def same(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def test_the_page_has_examples_of_every_kind() -> None:
    marks = [mark for _, mark, _ in cel_examples()]
    assert marks.count("→") >= 60 and marks.count("✗") >= 10 and None not in marks


@pytest.mark.parametrize(
    ("source", "mark", "rest"), cel_examples(), ids=[e[0] for e in cel_examples()]
)
def test_every_cel_example_gives_what_the_page_says(source: str, mark: str, rest: str) -> None:
    """A `→` example compiles and evaluates to the value after the arrow; a `✗` one fails,
    when it loads or when it runs."""
    values = sample()
    if mark == "✗":
        with pytest.raises((ExpressionError, Exception)):
            evaluate(source, values)
        return
    expected = evaluate(rest, {})
    got = evaluate(source, values)
    assert same(got, expected), f"{source} gives {got!r}, the page says {rest}"
