"""Random commands against the proposal workflow; the engine's invariants hold after every step.

After each command: the state is declared; a refused command changed nothing; an accepted one
added exactly one version, one history row and its events; replaying the history gives the
stored instance; the hash chain verifies. Run on the in-memory store and on a SQLite file.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from xieshang import Actor, Engine, FixedClock, XieshangError
from xieshang.adapters.memory import MemoryStore
from xieshang.workflows import bundled

CN = timezone(timedelta(hours=8))
REGISTRY = bundled()
PROPOSAL = REGISTRY.get("proposal")
STATES = set(PROPOSAL.definition.states)
ACTORS = [
    Actor.of("m1", "member", org="city"),
    Actor.of("m2", "member", org="city"),
    Actor.of("s1", "proposal_committee", org="city"),
    Actor.of("o1", "supervision_office", org="city"),
    Actor.of("c1", "chairpersons_council", org="city"),
    Actor.of("u1", "handling_unit", org="city", unit="housing"),
    Actor.of("u2", "handling_unit", org="city", unit="water"),
    Actor.of("x1", "member", "proposal_committee", org="elsewhere"),
    Actor.of("sys", "system"),
]
UNITS = ["housing", "water", "transport"]
PAYLOADS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "invite_cosigners": st.sampled_from([{"co_proposers": ["m2"]}, {"co_proposers": ["m1"]}]),
    "cosign": st.just({}),
    "decline_cosign": st.just({}),
    "submit": st.sampled_from(
        [{"category": "society"}, {"category": "economy", "is_public": False},
         {"category": "culture", "is_public": False, "non_public_reason": "涉及个人信息"}]
    ),
    "return_for_revision": st.just({}),
    "start_review": st.just({}),
    "file": st.just({"number": "2024-001"}),
    "reject": st.sampled_from([{"ground": "academic"}, {"ground": "personal"}]),
    "convert": st.sampled_from([{"target": "suggestion", "proposer_consented": True},
                                {"target": "opinion_report", "proposer_consented": False}]),
    "merge_into": st.just({"main_id": "some-other-proposal"}),
    "withdraw": st.just({}),
    "assign": st.sampled_from(
        [{"mode": "sole", "units": ["housing"]}, {"mode": "split", "units": ["housing", "water"]},
         {"mode": "lead_assisting", "units": ["housing", "water"], "lead_unit": "water"},
         {"mode": "split", "units": ["housing"]}]
    ),
    "flag_key": st.just({"lead_leader": "副市长"}),
    "reply": st.sampled_from([{"reply_class": c} for c in "ABC"]),
    "evaluate": st.sampled_from(
        [{"satisfaction": s} for s in ("satisfied", "basically_satisfied", "unsatisfied")]
    ),
    "final_meeting": st.just({"minutes": "面商纪要"}),
    "close_without_evaluation": st.just({}),
}
ENDINGS = {"withdraw", "reject", "convert", "merge_into", "return_for_revision"}  # reached by any_command
GARBAGE = st.sampled_from([{"category": 7}, {"no_such_field": 1}, {"reply_class": "Z"}])


def _snapshot(engine: Engine, iid: str) -> tuple[Any, ...]:
    inst = engine.store.load(iid, fresh=True)
    assert inst is not None
    return inst.to_dict(), len(engine.store.history(iid)), len(engine.store.outbox())


class ProposalMachine(RuleBasedStateMachine):
    instances = Bundle("instances")

    def make_store(self) -> Any:
        return MemoryStore()

    def __init__(self) -> None:
        super().__init__()
        self.clock = FixedClock(datetime(2024, 3, 1, 9, tzinfo=CN))
        self.store = self.make_store()
        self.engine = Engine(self.store, REGISTRY, self.clock)
        self.ids: list[str] = []

    @initialize(target=instances)
    def first(self) -> str:
        return self._start()

    def _start(self) -> str:
        iid = self.engine.start("proposal", {"title": "电动自行车充电设施建设",
                                             "first_proposer": "m1"}, ACTORS[0]).id
        self.ids.append(iid)
        return iid

    @rule(target=instances)
    def start(self) -> str:
        return self._start()

    @rule(days=st.integers(min_value=0, max_value=40))
    def advance_clock(self, days: int) -> None:
        self.clock.advance(days=days)

    @rule(iid=instances, data=st.data(), reason=st.sampled_from([None, "理由充分"]))
    def likely_valid_step(self, iid: str, data: st.DataObject, reason: str | None) -> None:
        """Pick among the (trigger, actor) pairs that available() allows, with a plausible payload."""
        choices = [
            (a.trigger, actor)
            for actor in ACTORS
            if actor.org in (None, "city")
            for a in self.engine.available(iid, actor)
            if a.allowed and a.trigger in PAYLOADS and a.trigger not in ENDINGS
        ]
        if not choices:
            return
        trigger, actor = data.draw(st.sampled_from(choices))
        self._fire(iid, trigger, actor, data.draw(PAYLOADS[trigger]), reason)

    @rule(
        iid=instances,
        data=st.data(),
        trigger=st.sampled_from([*PAYLOADS, "forward_to_unit"]),
        actor=st.sampled_from(ACTORS),
        reason=st.sampled_from([None, "理由充分"]),
        garbage=st.booleans(),
    )
    def any_command(self, iid: str, data: st.DataObject, trigger: str, actor: Actor,
                    reason: str | None, garbage: bool) -> None:
        strategy = GARBAGE if garbage or trigger not in PAYLOADS else PAYLOADS[trigger]
        self._fire(iid, trigger, actor, data.draw(strategy), reason)

    def _fire(self, iid: str, trigger: str, actor: Actor, payload: dict[str, Any],
              reason: str | None) -> None:
        before = _snapshot(self.engine, iid)
        old = self.store.load(iid, fresh=True)
        try:
            inst = self.engine.fire(iid, trigger, actor, payload, reason=reason)
        except XieshangError:
            assert _snapshot(self.engine, iid) == before, "a refused command changed something"
            return
        assert old is not None
        assert inst.version == old.version + 1
        rows = self.store.history(iid)
        assert len(rows) == before[1] + 1 and rows[-1].trigger == trigger
        new_events = self.store.outbox()[before[2]:]
        assert all(e.instance_id == iid and e.seq == inst.version for e in new_events)
        spec = next(t.spec for t in PROPOSAL.by_trigger[trigger]
                    if old.state in t.sources and t.target == inst.state)
        expected = 1 + len(spec.emits) + (1 if inst.final else 0)
        assert len(new_events) == (expected if spec.visibility == "public" else 0)

    @invariant()
    def states_are_declared_and_history_replays(self) -> None:
        for iid in self.ids:
            inst = self.store.load(iid, fresh=True)
            assert inst is not None and inst.state in STATES
            assert inst.version == len(self.store.history(iid))
            replayed = self.engine.replay(iid)
            assert (replayed.state, replayed.data) == (inst.state, inst.data)

    @invariant()
    def chain_verifies(self) -> None:
        assert self.engine.verify() == []

    def teardown(self) -> None:
        close = getattr(self.store, "close", None)
        if close is not None:
            close()


class SQLiteProposalMachine(ProposalMachine):
    def make_store(self) -> Any:
        from xieshang.adapters.sql import open_store

        self.tmp = Path(tempfile.mkdtemp())
        return open_store(f"sqlite:///{self.tmp / 'stateful.db'}", synchronous="NORMAL")

    def teardown(self) -> None:
        super().teardown()
        shutil.rmtree(self.tmp, ignore_errors=True)


_settings = settings(max_examples=40, stateful_step_count=40, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])
TestProposalOnMemory = ProposalMachine.TestCase
TestProposalOnMemory.settings = _settings
TestProposalOnSQLite = SQLiteProposalMachine.TestCase
TestProposalOnSQLite.settings = settings(max_examples=15, stateful_step_count=20, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])
