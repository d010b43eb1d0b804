"""Load + compile time of a bundled workflow, and its YAML read alone with libyaml and with
the pure-Python parser: the median of 20 runs, in milliseconds.

python bench/load.py [workflow-id] [--quick]      (default: proposal; always quick)
"""

from __future__ import annotations

import statistics
import sys
import time

from xieshang import load_definition, yamlsafe
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
    fast, slow = read_times(text, path.name)
    print(
        f"{path.name}: YAML read median {fast:.1f} ms with libyaml, {slow:.1f} ms with the "
        "pure-Python parser (the floor the reader is compared with)"
    )
    print(
        f"RESULT workflow={name} load_compile_median_ms={statistics.median(times) * 1000:.1f} "
        f"yaml_read_ms={fast:.1f} yaml_read_python_ms={slow:.1f}"
    )


def read_times(text: str, name: str) -> tuple[float, float]:
    """Median milliseconds of reading the file: as the loader does, and with libyaml off."""
    fast_class = yamlsafe._CLoader
    out = []
    for parser in (fast_class, None):
        yamlsafe._CLoader = parser
        times = []
        for _ in range(RUNS):
            started = time.perf_counter()
            yamlsafe.read_yaml(text, name)
            times.append(time.perf_counter() - started)
        out.append(statistics.median(times) * 1000)
    yamlsafe._CLoader = fast_class
    return out[0], out[1]


if __name__ == "__main__":
    main()
