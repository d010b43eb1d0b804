"""The stateful test ``xieshang explore --emit-test DIR`` writes for a workflow's owner to keep.

The test is a hypothesis ``RuleBasedStateMachine`` over the commands the walk saw accepted:
hypothesis sends them in any order, on any open instance, as either actor of their role, and
waits for timers between them. After each step it checks what must always hold: the stored
state is what replaying the history gives, the hash chains and the ledger verify, an accepted
command added one row to its instance's history, a refused one changed nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from xieshang.compiler import CompiledWorkflow

from .walk import Walk

__all__ = ["emit_test", "test_source"]

_TEMPLATE = '''"""A stateful test of the workflow {workflow!r} (version {version}), written by
``xieshang explore``.

Hypothesis sends the commands the exploration saw accepted, in any order, on any open instance,
as either actor of their role, and waits for timers between them. After every step it checks
that the stored state is what replaying the history gives, that the hash chains and the ledger
verify, that an accepted command added one row to its instance's history and that a refused one
changed nothing. Run it with pytest; run ``xieshang explore`` again after changing the workflow.
"""

import json
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from xieshang import CommandRefused, Engine, FixedClock, NotFound, Query
from xieshang.adapters.explore import actor_for, registry_for
from xieshang.adapters.explore.payloads import UNIT, fill_actor
from xieshang.adapters.explore.walk import T0
from xieshang.adapters.memory import MemoryStore

WORKFLOW = {workflow!r}
FILES = {files!r}  # besides the bundled workflows
REGISTRY = registry_for(FILES)
STARTS = json.loads({starts!r})
MOVES = json.loads({moves!r})
FAR = datetime(2200, 1, 1, tzinfo=UTC)


class Walk(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FixedClock(T0)
        self.store = MemoryStore()
        self.engine = Engine(self.store, REGISTRY, self.clock)

    def snapshot(self) -> object:
        rows = self.store.query(Query(limit=100_000))
        return sorted((i.id, i.version) for i in rows), self.store.ledger_head()

    @initialize(start=st.sampled_from(STARTS))
    def begin(self, start: list) -> None:
        role, data = start
        actor = actor_for(REGISTRY.get(WORKFLOW), role, 1)
        self.engine.start(WORKFLOW, fill_actor(data, actor.id), actor, unit=UNIT)

    @rule(move=st.sampled_from(MOVES), which=st.integers(0, 7), who=st.sampled_from([1, 2]))
    def send(self, move: list, which: int, who: int) -> None:
        workflow, trigger, role, payload = move
        open_ = self.store.query(Query(workflow=workflow, final=False, limit=100_000))
        if not open_:
            return
        instance = open_[which % len(open_)]
        actor = actor_for(REGISTRY.by_hash(instance.definition_hash), role, who)
        before, rows = self.snapshot(), len(self.store.history(instance.id))
        try:
            self.engine.fire(
                instance.id, trigger, actor, fill_actor(payload, actor.id), reason="test"
            )
        except (CommandRefused, NotFound):  # NotFound: this actor may not read the instance
            assert self.snapshot() == before, "a refused command changed the store"
            return
        assert len(self.store.history(instance.id)) == rows + 1

    @rule()
    def wait(self) -> None:
        timers = self.store.due_timers(FAR, limit=1)
        if timers:
            self.clock.set(max(timers[0].due_at, self.clock.now()) + timedelta(minutes=1))
            self.engine.tick(self.clock.now())

    @invariant()
    def replay_gives_the_stored_state(self) -> None:
        for instance in self.store.query(Query(limit=100_000)):
            again = self.engine.replay(instance.id)
            assert (again.state, again.data, again.version) == (
                instance.state,
                instance.data,
                instance.version,
            )

    @invariant()
    def everything_verifies(self) -> None:
        assert self.engine.verify() == []


Walk.TestCase.settings = settings(
    max_examples={examples},
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
Test{name} = Walk.TestCase
'''


def test_source(wf: CompiledWorkflow, walk: Walk, files: list[str], *, examples: int = 20) -> str:
    """The text of the test file for ``wf``, from what ``walk`` saw accepted."""
    starts = [[m.role, m.payload] for m in walk.accepted if m.trigger == "start"]
    moves = [[m.workflow, m.trigger, m.role, m.payload] for m in walk.accepted]
    moves = [m for m in moves if m[1] != "start"]
    unique = list({json.dumps(m, sort_keys=True): m for m in moves}.values())
    name = "".join(part.title() for part in wf.id.split("_"))
    return _TEMPLATE.format(
        workflow=wf.id,
        version=wf.definition.version,
        files=files,
        starts=json.dumps(starts, ensure_ascii=False, sort_keys=True),
        moves=json.dumps(unique or [[wf.id, "-", "-", {}]], ensure_ascii=False, sort_keys=True),
        examples=examples,
        name=name,
    )


def emit_test(
    wf: CompiledWorkflow, walk: Walk, files: list[str], folder: Path, *, examples: int = 20
) -> Path:
    """Write the test of ``wf`` into ``folder`` as ``test_explore_<id>.py``; its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"test_explore_{wf.id}.py"
    text = test_source(wf, walk, files, examples=examples)
    partial = path.with_suffix(".py.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)  # never a half-written test
    return path
