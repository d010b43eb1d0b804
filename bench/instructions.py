"""The instructions a fire costs in memory, counted by valgrind: exact where timings on a shared
machine vary by a third from one run to the next.

    python bench/instructions.py [--n N] [--quick]

Runs itself twice under ``valgrind --tool=callgrind``, with N and 3N iterations, counting only
inside each measured loop (``callgrind_control``), and prints instructions per iteration by the
difference of the two runs, so that what a loop pays once (its first calls, caches filled)
cancels out. Measured: the engine on the in-memory store firing ``flag_key`` on a filed
proposal (a guard and two effects), and ``submit`` on a draft (a guard and nine effects); the
floor, in the same runs: the bare ``transitions`` machine moving a model from one state to
another, which any step driven by it pays at least. Needs valgrind (Debian: ``valgrind``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

KINDS = ("guard", "submit", "transitions")


def child(n: int, out: Path) -> None:
    """Inside valgrind: each kind's loop of ``n``, counted alone and dumped under its name."""
    sys.path.insert(0, str(Path(__file__).parent))
    from fire import CHAIR, INSTANCES, MEMBER, filed_instances
    from transitions import Machine

    from xieshang import Engine
    from xieshang.adapters.memory import MemoryStore
    from xieshang.workflows import bundled

    engine = Engine(MemoryStore(), bundled())
    ids = filed_instances(engine, INSTANCES)
    drafts = [
        engine.start("proposal", {"title": f"d {k}", "first_proposer": "m1"}, MEMBER).id
        for k in range(n)
    ]

    class Model:
        state: str

    model = Model()
    Machine(model=model, states=["a", "b"], initial="a", auto_transitions=False,
            transitions=[["go", "a", "b"], ["back", "b", "a"]])  # fmt: skip

    def guard() -> None:
        for k in range(n):
            engine.fire(ids[k % len(ids)], "flag_key", CHAIR, {"lead_leader": f"L{k}"})

    def submit() -> None:
        for iid in drafts:
            engine.fire(iid, "submit", MEMBER, {"category": "economy", "is_public": True})

    def transitions() -> None:
        for _ in range(n // 2):
            model.go()  # type: ignore[attr-defined]
            model.back()  # type: ignore[attr-defined]
        if n % 2:
            model.go()  # type: ignore[attr-defined]

    pid = str(os.getpid())

    def control(*args: str) -> None:
        subprocess.run(["callgrind_control", *args, pid], check=True, capture_output=True)

    for kind, loop in (("guard", guard), ("submit", submit), ("transitions", transitions)):
        control("-z")
        control("-i", "on")
        loop()
        control("-i", "off")
        control("-d", kind)
    out.write_text("done")


def counted(n: int, tmp: Path) -> dict[str, int]:
    """Instructions of each kind's loop of ``n``, from the dumps of one run under valgrind."""
    prefix = tmp / f"cg-{n}"
    done = tmp / f"done-{n}"
    subprocess.run(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no",
         f"--callgrind-out-file={prefix}.%p", sys.executable, __file__,
         "--child", str(n), "--out", str(done)],
        check=True, capture_output=True,
    )  # fmt: skip
    assert done.exists(), "the measured run did not finish"
    found: dict[str, int] = {}
    for dump in tmp.glob(f"cg-{n}.*"):
        text = dump.read_text(errors="replace")
        trigger = re.search(r"^desc: Trigger: dump (\w+)", text, re.M)
        total = re.search(r"^totals: (\d+)", text, re.M)
        if trigger and total and trigger.group(1) in KINDS:
            found[trigger.group(1)] = int(total.group(1))
    missing = set(KINDS) - set(found)
    assert not missing, f"no dump for {sorted(missing)}"
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="iterations of the shorter run")
    parser.add_argument("--quick", action="store_true", help="60 iterations")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.out)
        return
    n = 60 if args.quick else args.n
    missing = [tool for tool in ("valgrind", "callgrind_control") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"{', '.join(missing)} not found: install valgrind (Debian: valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        short, long = counted(n, Path(tmp)), counted(3 * n, Path(tmp))
    per = {kind: (long[kind] - short[kind]) / (2 * n) for kind in KINDS}
    floor = per["transitions"]
    for kind in KINDS:
        ratio = "" if kind == "transitions" else f"   {per[kind] / floor:6.1f} x the floor"
        print(f"{kind:<12} {per[kind]:12,.0f} instructions per iteration{ratio}")
    print(
        f"RESULT guard_instructions={per['guard']:.0f} submit_instructions={per['submit']:.0f} "
        f"transitions_instructions={floor:.0f} guard_ratio={per['guard'] / floor:.1f} "
        f"submit_ratio={per['submit'] / floor:.1f}"
    )


if __name__ == "__main__":
    main()
