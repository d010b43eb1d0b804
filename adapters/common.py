"""What the command line and the HTTP API share: diagram formats, SVG by graphviz, page cursors."""

from __future__ import annotations

import shutil
import subprocess
from enum import StrEnum

from xieshang import Definition, PageCursor, Usage, XieshangError
from xieshang.shared import svg_titles, to_dot, to_mermaid

__all__ = ["DOT_MISSING", "MEDIA_TYPES", "DiagramFormat", "draw", "parse_cursor", "svg"]

DOT_MISSING = (
    "the graphviz 'dot' binary is needed for --format svg and was not found on PATH; "
    "install graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz), "
    "or use --format dot or --format mermaid, which need nothing else"
)


class DiagramFormat(StrEnum):
    """How a workflow is drawn: Mermaid text, Graphviz dot text, or an SVG picture."""

    mermaid = "mermaid"
    dot = "dot"
    svg = "svg"


MEDIA_TYPES = {
    DiagramFormat.mermaid: "text/plain; charset=utf-8",
    DiagramFormat.dot: "text/vnd.graphviz; charset=utf-8",
    DiagramFormat.svg: "image/svg+xml",
}


def svg(dot_text: str, *, timeout: float) -> bytes:
    """``dot_text`` drawn as SVG by graphviz' ``dot`` binary, its tooltips as ``<title>``s.

    Raises:
        Usage: ``dot`` is not on PATH (``missing="dot"``; the message says how to install it).
        XieshangError: ``dot`` failed or ran longer than ``timeout`` seconds.
    """
    binary = shutil.which("dot")
    if binary is None:
        raise Usage(DOT_MISSING, "--format", missing="dot")
    try:
        done = subprocess.run(
            [binary, "-Tsvg"],
            input=dot_text.encode(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise XieshangError(f"graphviz 'dot' failed: {e}") from e
    if done.returncode != 0:
        raise XieshangError(f"graphviz 'dot' failed: {done.stderr.decode(errors='replace')}")
    return svg_titles(done.stdout.decode()).encode()


def draw(definition: Definition, fmt: DiagramFormat, *, timeout: float) -> bytes:
    """The workflow drawn in ``fmt`` (see :func:`svg` for what SVG raises)."""
    if fmt is DiagramFormat.mermaid:
        return to_mermaid(definition).encode()
    dot_text = to_dot(definition)
    return svg(dot_text, timeout=timeout) if fmt is DiagramFormat.svg else dot_text.encode()


def parse_cursor(text: str | None, option: str = "cursor") -> PageCursor | None:
    """The position a page's ``next_cursor`` names; None for no cursor.

    Raises:
        Usage: ``text`` is not ``<ISO datetime>|<instance id>``; ``option`` names where it came.
    """
    if text is None:
        return None
    try:
        return PageCursor.parse(text, option)
    except Usage:
        raise Usage(f"{option} {text!r} is not a cursor this command printed", option) from None
