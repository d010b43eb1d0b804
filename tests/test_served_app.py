"""What ``xieshang serve`` runs in each server process: the API of ``app_from_env``, with what
the process made to start set aside from the garbage collector; ``app_from_env`` alone, for an
embedder, leaves the collector as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import gc, json, sys
from xieshang.adapters.http import commands
before = gc.get_freeze_count()
app = getattr(commands, sys.argv[1])()
routes = sorted(r.path for r in app.routes if r.path.startswith("/instances"))
print(json.dumps({"before": before, "frozen": gc.get_freeze_count(),
                  "tracked": len(gc.get_objects()), "routes": routes}))
"""


def _probe(factory: str, tmp_path: Path) -> dict[str, object]:
    env = {**os.environ, "XIESHANG_DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, factory],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dict(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize("factory", ["served_app", "app_from_env"])
def test_the_served_app_sets_its_startup_aside_and_the_embedded_one_does_not(
    factory: str, tmp_path: Path
) -> None:
    """The served app is the same API; after it, the objects startup made (tens of thousands:
    compiled workflows, routes, schemas) are frozen and few remain for a collection to walk.
    The embedder's factory freezes nothing."""
    found = _probe(factory, tmp_path)
    assert found["before"] == 0
    assert "/instances/{instance_id}/fire" in found["routes"]  # type: ignore[operator]
    if factory == "served_app":
        assert found["frozen"] > 20_000  # type: ignore[operator]
        assert found["tracked"] < found["frozen"] // 5  # type: ignore[operator]
    else:
        assert found["frozen"] == 0
        assert found["tracked"] > 20_000  # type: ignore[operator]
