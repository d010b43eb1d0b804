"""Random commands against proposals and their handling units; invariants hold after every step.

After each command: every state is declared; a refused command changed nothing anywhere; an
accepted one added exactly one version, one history row and its events to its instance (plus
the children it spawned and the join it completed); replaying any history gives the stored
instance; every hash chain verifies; every child belongs to exactly one existing parent; a parent
never passes a join its children do not satisfy, and never waits on a join they do.
Run on the in-memory store and on a SQLite file.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from xieshang import Actor, Availability, Engine, FixedClock, NotFound, XieshangError
from xieshang.adapters.memory import MemoryStore
from xieshang.workflows import bundled

CN = timezone(timedelta(hours=8))
REGISTRY = bundled()
PROPOSAL = REGISTRY.get("proposal")
STATES = {wf.id: set(wf.definition.states) for wf in REGISTRY}
DONE = {"replied", "countersigned"}
ACTORS = [
    Actor.of("m1", "member", org="city"),
    Actor.of("m2", "member", org="city"),
    Actor.of("s1", "proposal_committee", org="city"),
    Actor.of("o1", "supervision_office", org="city"),
    Actor.of("c1", "chairpersons_council", org="city"),
    Actor.of("u1", "handling_unit", org="city", unit="housing"),
    Actor.of("u2", "handling_unit", org="city", unit="water"),
    Actor.of("u3", "handling_unit", org="city", unit="transport"),
    Actor.of("x1", "member", "proposal_committee", org="elsewhere"),
    Actor.of("sys", "system"),
]
UNITS = ["housing", "water", "transport"]
PAYLOADS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "invite_cosigners": st.sampled_from([{"co_proposers": ["m2"]}, {"co_proposers": ["m1"]}]),
    "cosign": st.just({}),
    "decline_cosign": st.just({}),
    "submit": st.sampled_from(
        [
            {"category": "society"},
            {"category": "economy", "is_public": False},
            {"category": "culture", "is_public": False, "non_public_reason": "涉及个人信息"},
        ]
    ),
    "return_for_revision": st.just({}),
    "start_review": st.just({}),
    "file": st.just({"number": "2024-001"}),
    "reject": st.sampled_from([{"ground": "academic"}, {"ground": "personal"}]),
    "convert": st.sampled_from(
        [
            {"ground": "no_concrete_suggestion", "proposer_consented": True},
            {"ground": "no_concrete_suggestion", "proposer_consented": False},
            {"ground": "academic", "proposer_consented": True},
        ]
    ),
    "merge_into": st.just({"main_id": "some-other-proposal"}),
    "withdraw": st.just({}),
    "assign": st.sampled_from(
        [
            {"mode": "sole", "units": ["housing"]},
            {"mode": "split", "units": ["housing", "water"]},
            {"mode": "lead_assisting", "units": ["housing", "water"], "lead_unit": "water"},
            {"mode": "split", "units": ["housing"]},
        ]
    ),
    "flag_key": st.just({"lead_leader": "副市长"}),
    "reply": st.sampled_from([{"reply_class": c} for c in "ABC"]),
    "evaluate": st.sampled_from(
        [{"satisfaction": s} for s in ("satisfied", "basically_satisfied", "unsatisfied")]
    ),
    "final_meeting": st.just({"minutes": "面商纪要"}),
    "close_without_evaluation": st.just({}),
    "acknowledge": st.just({"contact_person": "张"}),
    "request_return": st.sampled_from([{}, {"suggested_unit": "transport"}]),
    "approve_return": st.sampled_from([{"new_unit": u} for u in UNITS]),
    "deny_return": st.just({}),
    "contact_proposer": st.sampled_from([{"mode": "phone"}, {"mode": "face_to_face"}]),
    "send_assist_opinion": st.just({"opinion": "同意"}),
    "draft_reply": st.sampled_from(
        [{"reply_class": c, "reply_text": "答复", "signer": "局长"} for c in "ABC"]
    ),
    "countersign": st.just({}),
    "submit_reply": st.just({}),
    "approve_reply": st.sampled_from([{}, {"reply_class": "A"}]),
    "reject_reply": st.just({}),
}
ENDINGS = {
    "withdraw",
    "reject",
    "convert",
    "merge_into",
    "return_for_revision",
}  # reached by any_command
GARBAGE = st.sampled_from([{"category": 7}, {"no_such_field": 1}, {"reply_class": "Z"}])


def _snapshot(engine: Engine) -> tuple[Any, ...]:
    ids = sorted(engine.store.instance_ids())
    rows = [engine.store.load(i, fresh=True) for i in ids]
    return (
        [r.to_dict() for r in rows if r is not None],
        sum(len(engine.store.history(i)) for i in ids),
        len(engine.store.outbox()),
    )


class ProposalMachine(RuleBasedStateMachine):
    instances = Bundle("instances")

    def make_store(self) -> Any:
        return MemoryStore()

    def __init__(self) -> None:
        super().__init__()
        self.clock = FixedClock(datetime(2024, 3, 1, 9, tzinfo=CN))
        self.store = self.make_store()
        counter = itertools.count(1)
        self.engine = Engine(
            self.store, REGISTRY, self.clock, ids=lambda: f"i{next(counter):06d}"
        )  # deterministic draws
        self.ids: list[str] = []

    @initialize(target=instances)
    def first(self) -> str:
        return self._start()

    def _start(self) -> str:
        iid = self.engine.start(
            "proposal", {"title": "电动自行车充电设施建设", "first_proposer": "m1"}, ACTORS[0]
        ).id
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
        """Pick among the (trigger, actor) pairs available() allows now or with a payload, with a
        plausible payload."""
        family = [iid, *(c.id for c in self.engine.children(iid))]
        choices = [
            (member, a.trigger, actor)
            for member in family
            for actor in ACTORS
            if actor.org in (None, "city")
            for a in self._available(member, actor)
            if (a.allowed or a.needs_payload) and a.trigger in PAYLOADS and a.trigger not in ENDINGS
        ]
        if not choices:
            return
        iid, trigger, actor = data.draw(st.sampled_from(choices))
        self._fire(iid, trigger, actor, data.draw(PAYLOADS[trigger]), reason)

    def _available(self, iid: str, actor: Actor) -> list[Availability]:
        """What ``actor`` may fire on ``iid``; nothing on an instance it may not read."""
        try:
            return self.engine.available(iid, actor)
        except NotFound:
            return []

    @rule(
        iid=instances,
        data=st.data(),
        trigger=st.sampled_from([*PAYLOADS, "forward_to_unit"]),
        actor=st.sampled_from(ACTORS),
        reason=st.sampled_from([None, "理由充分"]),
        garbage=st.booleans(),
    )
    def any_command(
        self,
        iid: str,
        data: st.DataObject,
        trigger: str,
        actor: Actor,
        reason: str | None,
        garbage: bool,
    ) -> None:
        strategy = GARBAGE if garbage or trigger not in PAYLOADS else PAYLOADS[trigger]
        self._fire(iid, trigger, actor, data.draw(strategy), reason)

    @rule(iid=instances, main=instances)
    def merge_into_another(self, iid: str, main: str) -> None:
        """并案 between two real proposals: it happens only into a filed one, which takes it in."""
        filed, source = self.store.load(main, fresh=True), self.store.load(iid, fresh=True)
        self._fire(iid, "merge_into", ACTORS[2], {"main_id": main}, None)
        merged = self.store.load(iid, fresh=True)
        assert source is not None and merged is not None
        if source.state != "merged" and merged.state == "merged":
            after = self.store.load(main, fresh=True)
            assert filed is not None and filed.state == "filed"
            assert after is not None and after.data["merged_from"][-1] == iid

    def _fire(
        self, iid: str, trigger: str, actor: Actor, payload: dict[str, Any], reason: str | None
    ) -> None:
        before = _snapshot(self.engine)
        old = self.store.load(iid, fresh=True)
        children_before = len(self.engine.children(iid))
        try:
            inst = self.engine.fire(iid, trigger, actor, payload, reason=reason)
        except XieshangError:
            assert _snapshot(self.engine) == before, "a refused command changed something"
            return
        assert old is not None
        assert inst.version == old.version + 1
        rows = self.store.history(iid)
        assert len(rows) == old.version + 1 and rows[-1].trigger == trigger
        mine = [e for e in self.store.outbox(iid) if e.seq == inst.version]
        wf = REGISTRY.by_hash(inst.definition_hash)
        assert wf is not None
        # candidates with the same source and target differ in their guards, and may in what they
        # emit (an assisting opinion sent late also announces that it is late)
        specs = [
            t.spec
            for t in wf.by_trigger[trigger]
            if old.state in t.sources and t.target == inst.state
        ]
        spec = specs[0]
        expected = {1 + len(s.emits) + (1 if inst.final else 0) for s in specs}
        assert len(mine) in (expected if spec.visibility == "public" else {0})
        spawned = len(self.engine.children(iid)) - children_before
        if spec.spawn is None:
            assert spawned == 0 or spec.spawn is not None

    @invariant()
    def states_are_declared_and_history_replays(self) -> None:
        for iid in self.store.instance_ids():
            inst = self.store.load(iid, fresh=True)
            assert inst is not None and inst.state in STATES[inst.workflow]
            assert inst.version == len(self.store.history(iid))
            replayed = self.engine.replay(iid)
            assert (replayed.state, replayed.data) == (inst.state, inst.data)

    @invariant()
    def children_have_one_parent_and_joins_are_exact(self) -> None:
        everyone = {i: self.store.load(i, fresh=True) for i in self.store.instance_ids()}
        for iid, inst in everyone.items():
            assert inst is not None
            if inst.parent_id is not None:
                assert inst.parent_id in everyone
                assert [c.id for c in self.engine.children(inst.parent_id)].count(iid) == 1
            if inst.workflow != "proposal" or inst.state not in ("assigned", "rehandling"):
                continue
            counted = [c for c in self.engine.children(iid) if c.state != "reassigned"]
            assert counted and not all(c.state in DONE for c in counted), (
                "a parent waits on a join its children satisfy"
            )
        for iid, inst in everyone.items():
            assert inst is not None
            if (
                inst.workflow == "proposal"
                and inst.state
                in (
                    "replied",
                    "closed",
                    "awaiting_meeting",
                )
                and any(r.trigger == "children_replied" for r in self.store.history(iid))
            ):
                counted = [c for c in self.engine.children(iid) if c.state != "reassigned"]
                assert all(c.state in DONE for c in counted), "a join passed too early"

    @invariant()
    def chain_verifies(self) -> None:
        assert self.engine.verify() == []

    @invariant()
    def one_ledger_position_per_committed_row(self) -> None:
        """The ledger holds every history row once, at positions 1..N in commit order."""
        ledger = self.store.ledger()
        rows = self.store.row_hashes()
        assert [e.position for e in ledger] == list(range(1, len(rows) + 1))
        assert {(e.instance_id, e.seq): e.row_hash for e in ledger} == rows
        assert self.store.ledger_head() == (
            (ledger[-1].position, ledger[-1].hash) if ledger else (0, "")
        )

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


_settings = settings(
    max_examples=25,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestProposalOnMemory = ProposalMachine.TestCase
TestProposalOnMemory.settings = _settings
TestProposalOnSQLite = SQLiteProposalMachine.TestCase
TestProposalOnSQLite.settings = settings(
    max_examples=10,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
