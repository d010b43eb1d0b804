"""Load + compile time of a bundled workflow: the median of 20 runs, in milliseconds.

python bench/load.py [workflow-id]      (default: proposal)
"""

from __future__ import annotations

import statistics
import sys
import time

from xieshang import load_definition
from xieshang.workflows import BUNDLED_DIR

RUNS = 20


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "proposal"
    path = BUNDLED_DIR / f"{name}.yaml"
    text = path.read_text(encoding="utf-8")
    load_definition(text, path.name)  # imports and first-use caches are not what we measure
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        load_definition(text, path.name)
        times.append(time.perf_counter() - started)
    print(
        f"{path.name}: load + compile median {statistics.median(times) * 1000:.1f} ms "
        f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}) over {RUNS} runs"
    )


if __name__ == "__main__":
    main()
