"""What the bundled workflows and the package cite ships with the project.

A comment that sends a process owner to a document must name a file in the repository, and a
section that exists in it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CITED = re.compile(r"(?<![\w/])((?:docs/)?[\w-]+\.md)(?:`*\s*§(\d+))?")
SOURCES = sorted(
    [*ROOT.glob("workflows/*.yaml"), *ROOT.glob("engine/*.py"), *ROOT.rglob("adapters/**/*.py")]
)


def _sections(doc: Path) -> set[str]:
    return set(re.findall(r"^## §(\d+)\b", doc.read_text(encoding="utf-8"), flags=re.MULTILINE))


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_cited_document_and_section_exists(source: Path) -> None:
    for name, section in CITED.findall(source.read_text(encoding="utf-8")):
        doc = ROOT / name if name.startswith("docs/") else ROOT / "docs" / name
        if not doc.exists() and (ROOT / name).exists():
            doc = ROOT / name  # README.md and the like
        assert doc.exists(), f"{source.relative_to(ROOT)} cites {name}, which does not ship"
        if section:
            assert section in _sections(doc), (
                f"{source.relative_to(ROOT)} cites {name} §{section}, which it does not have"
            )


def test_each_bundled_workflow_names_the_process_it_models() -> None:
    cited = {
        p.stem: CITED.findall(p.read_text(encoding="utf-8")) for p in ROOT.glob("workflows/*.yaml")
    }
    assert all(any(name.endswith("processes.md") for name, _ in refs) for refs in cited.values()), {
        stem for stem, refs in cited.items() if not refs
    }
