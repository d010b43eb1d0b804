"""``xieshang explore``: the walk finds the problems planted in a fixture, reaches every state
of a workflow it can walk, explores every bundled workflow, and the stateful test it writes
passes on every bundled workflow and fails on a store that breaks the invariants."""

import importlib.util
import json
import unittest
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, settings
from typer.testing import CliRunner

from xieshang import Commit, Engine
from xieshang.adapters.cli import app
from xieshang.adapters.explore import findings, registry_for, walk, workflow_of
from xieshang.adapters.explore.emit import emit_test
from xieshang.adapters.memory import MemoryStore
from xieshang.workflows import bundled, bundled_files

FIXTURES = Path(__file__).parent / "fixtures" / "explore"
PLANTED = FIXTURES / "planted.yaml"
runner = CliRunner()

# how many states of each bundled workflow the walk reaches at least (its guards that need
# other instances or values of a kind the walk does not make hide the others)
REACHED_AT_LEAST = {
    "annual_awards": 6,
    "annual_consultation_plan": 2,
    "consultation_topic": 9,
    "democratic_appraisal": 6,
    "key_proposal_selection": 1,
    "key_proposal_supervision": 1,
    "meeting_attendance": 3,
    "micro_consultation": 6,
    "online_consultation": 4,
    "opinion_report": 12,
    "proposal": 13,
    "proposal_handling": 7,
    "standing_report": 4,
}


def test_the_planted_problems_are_found_each_where_it_is() -> None:
    result = runner.invoke(app, ["explore", str(PLANTED), "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    found = {(f["kind"], f["where"]) for f in report["findings"]}
    assert found == {
        ("unreached-state", "states.escalated"),
        ("final-unreached", "states.archived"),
        ("final-unreached", "states.countersigned"),
        ("separation-blocks", "transitions.approve"),
        ("guard-never-passes", "transitions.escalate"),
        ("timer-never-fires", "timers[0]"),
    }
    assert report["reached"] == ["approved", "draft", "submitted"]
    assert report["bounded"] is False
    guard = next(f for f in report["findings"] if f["kind"] == "guard-never-passes")
    assert "refused every payload" in guard["message"]


def test_a_workflow_the_walk_can_finish_has_no_findings() -> None:
    path = bundled_files()[[p.stem for p in bundled_files()].index("opinion_report")]
    result = runner.invoke(app, ["explore", str(path)])
    assert result.exit_code == 0, result.output
    assert "reached 12 of 12 states" in result.stdout


@pytest.mark.parametrize("workflow", sorted(REACHED_AT_LEAST))
def test_every_bundled_workflow_is_explored(workflow: str) -> None:
    registry = bundled()
    result = walk(registry, workflow, budget=150)
    wf = registry.get(workflow)
    kinds = {f.kind for f in findings(wf, result)}
    assert "unreachable-state" not in kinds  # the loader refuses those already
    assert len(result.reached[workflow]) >= REACHED_AT_LEAST[workflow]
    assert result.reached[workflow] <= set(wf.definition.states)
    assert {s for s, spec in wf.definition.states.items() if spec.initial} <= result.reached[
        workflow
    ]


def _load(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(module: Any, case: str, log: Path) -> unittest.TestResult:
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(getattr(module, case))
    with open(log, "w") as stream:
        return unittest.TextTestRunner(stream=stream).run(suite)


@pytest.mark.parametrize("path", bundled_files(), ids=lambda p: p.stem)
def test_the_emitted_test_passes_on_every_bundled_workflow(path: Path, tmp_path: Path) -> None:
    declared = workflow_of(path)
    assert declared is not None
    registry = registry_for([path])
    result = walk(registry, declared[0], budget=120)
    written = emit_test(registry.get(declared[0]), result, [str(path)], tmp_path, examples=4)
    assert written.name == f"test_explore_{path.stem}.py"
    module = _load(written, f"emitted_{path.stem}")
    case = "Test" + "".join(part.title() for part in declared[0].split("_"))
    outcome = _run(module, case, tmp_path / "run.log")
    assert outcome.wasSuccessful(), (tmp_path / "run.log").read_text()[-3000:]
    assert outcome.testsRun == 1
    # the moves it sends are the ones the walk saw accepted, starts apart
    accepted = {(m.workflow, m.trigger) for m in result.accepted if m.trigger != "start"}
    assert {(m[0], m[1]) for m in module.MOVES} == accepted or not accepted


class Forgetful(MemoryStore):
    """A store that changes each instance's data behind its history (a broken write path)."""

    def apply(self, commit: Commit) -> None:
        super().apply(commit)
        for new in [*commit.inserts, *(new for new, _ in commit.updates)]:
            self._instances[new.id].data = {**new.data, "title": "changed behind the log"}


def test_the_emitted_test_fails_on_a_store_that_breaks_the_invariants(tmp_path: Path) -> None:
    registry = registry_for([PLANTED])
    result = walk(registry, "explore_planted")
    path = emit_test(registry.get("explore_planted"), result, [str(PLANTED)], tmp_path)
    module = _load(path, "emitted_planted")
    quick = settings(module.Walk.TestCase.settings, phases=[Phase.generate], database=None)
    module.Walk.TestCase.settings = quick
    outcomes: dict[str, unittest.TestResult] = {}
    for store in (MemoryStore, Forgetful):
        module.MemoryStore = store
        outcomes[store.__name__] = _run(
            module, "TestExplorePlanted", tmp_path / f"{store.__name__}.log"
        )
    assert outcomes["MemoryStore"].wasSuccessful()
    assert not outcomes["Forgetful"].wasSuccessful()
    assert not list(tmp_path.glob("*.partial"))
    failure = (tmp_path / "Forgetful.log").read_text()
    assert "replay_gives_the_stored_state" in failure or "everything_verifies" in failure


def test_a_broken_file_is_refused_with_its_problems_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "broken.yaml"
    text = PLANTED.read_text(encoding="utf-8").replace("to: approved", "to: nowhere")
    broken.write_text(text, encoding="utf-8")
    out = tmp_path / "tests"
    result = runner.invoke(app, ["explore", str(broken), "--emit-test", str(out), "--json"])
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert any("nowhere" in p["message"] for p in error["problems"])
    assert not out.exists()
    missing = runner.invoke(app, ["explore", str(tmp_path / "absent.yaml")])
    assert missing.exit_code == 2 and "no such file" in missing.output


def test_a_fork_of_the_memory_store_is_independent() -> None:
    """What the walk relies on: writing to a fork leaves the original as it was, both ways."""
    store = MemoryStore()
    engine = Engine(store, bundled())
    from xieshang import Actor

    member = Actor.parse("m1:member@o")
    started = engine.start("proposal", {"title": "t", "first_proposer": "m1"}, member)
    fork = store.fork()
    Engine(fork, bundled()).fire(started.id, "submit", member, {"category": "economy"})
    assert store.load(started.id).state == "draft"  # type: ignore[union-attr]
    assert fork.load(started.id).state == "submitted"  # type: ignore[union-attr]
    assert len(store.history(started.id)) == 1 and len(fork.history(started.id)) == 2
    assert len(store.outbox()) < len(fork.outbox()) and store.ledger_head() != fork.ledger_head()
    assert Engine(fork, bundled()).verify() == [] and engine.verify() == []
