"""Load + compile time of a bundled workflow: the median of 20 runs, in milliseconds.

python bench/load.py [workflow-id] [--quick]      (default: proposal; always quick)
"""

from __future__ import annotations

import statistics
import sys
import time

from xieshang import load_definition
from xieshang.workflows import BUNDLED_DIR

RUNS = 20


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--quick"]  # one workflow is quick already
    name = args[0] if args else "proposal"
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
    print(f"RESULT workflow={name} load_compile_median_ms={statistics.median(times) * 1000:.1f}")


if __name__ == "__main__":
    main()
