"""The README's command-line and HTTP sessions run as pasted, in an empty directory.

The Python block is a doctest; the two shell sessions are run here with bash, each in a fresh
directory with nothing configured, so the README cannot drift from what the commands do.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"^## (?P<title>[^\n]+)\n(?:(?!^## ).)*?^```sh\n(?P<body>.*?)^```", re.M | re.S)


def sessions() -> dict[str, str]:
    """The shell block of each README section that has one, by section title."""
    return {m["title"]: m["body"] for m in BLOCK.finditer(README.read_text(encoding="utf-8"))}


def run(body: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XIESHANG_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", body],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_command_line_session_runs_as_pasted(tmp_path: Path) -> None:
    """Every line of the CLI session succeeds; the proposal is submitted, the audit verifies,
    the calendar file checks and the provisional date is the one the comment gives."""
    result = run(sessions()["On the command line"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2027-01-05" in result.stdout and "provisional" in result.stdout
    assert "✓" in result.stdout
    assert (tmp_path / "xieshang.db").exists()


@pytest.mark.skipif(
    shutil.which("curl") is None and os.environ.get("CI") != "true",
    reason="the HTTP session needs curl (CI installs it)",
)
def test_the_http_session_runs_as_pasted(tmp_path: Path) -> None:
    """The server starts, the proposal is started and submitted over HTTP with the token, its
    history comes back, and the server is stopped."""
    result = run(sessions()["Over HTTP"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"trigger":"submit"' in result.stdout.replace(" ", "")
