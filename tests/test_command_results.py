"""What a command answers is what its actor may read: ``fire`` and ``start`` (the library and
``POST /instances/.../fire``), and an admin's steps, show the instance after the step as
:meth:`Engine.get` would show it to that actor, never a field its ``read:`` rules keep from it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xieshang import Actor, Engine, NotFound, Registry
from xieshang.adapters.http import create_app
from xieshang.adapters.http.commands import token_store_for
from xieshang.adapters.http.testing import serve_in_thread
from xieshang.adapters.memory import MemoryStore
from xieshang.adapters.sql import open_store

# a member sees an open note (its public title) and acknowledges it; then it reads it no more.
# A clerk reads it whole. A guest starts notes and reads none of them.
NOTE = """
id: note
version: 1
title: {zh: 便笺, en: Note}
roles:
  clerk: {zh: 办事员}
  member: {zh: 委员}
  guest: {zh: 来宾}
read:
  see:
    - roles: [member]
      states: [open]
  data:
    - roles: [clerk]
start:
  roles: [clerk, guest]
data:
  title: {type: string, required: true, public: true, max_length: 50}
  secret: {type: string, max_length: 50}
  seen_by: {type: string, max_length: 50}
states:
  open: {initial: true, label: {zh: 待阅}}
  seen: {final: true, label: {zh: 已阅}}
transitions:
  - trigger: ack
    from: open
    to: seen
    roles: [member]
    set: {seen_by: actor.id}
"""
CLERK = Actor.of("c1", "clerk", org="city")
MEMBER = Actor.of("m1", "member", org="city")
GUEST = Actor.of("g1", "guest", org="city")
PUBLIC = {"title"}


def _engine(store: object) -> Engine:
    return Engine(store, Registry.from_texts([("note.yaml", NOTE)]))  # type: ignore[arg-type]


@pytest.fixture(params=["memory", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "memory":
        yield _engine(MemoryStore())
        return
    with open_store(f"sqlite:///{tmp_path / 'x.db'}") as store:
        yield _engine(store)


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=20)


# each example starts a note of its own on the one engine
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(title=TEXT, secret=TEXT)
def test_a_fire_answers_only_what_its_actor_may_read(
    engine: Engine, title: str, secret: str
) -> None:
    note = engine.start("note", {"title": title, "secret": secret}, CLERK)
    assert note.data == {"title": title, "secret": secret}  # the clerk reads it whole
    assert set(engine.get(note.id, MEMBER).data) == PUBLIC
    moved = engine.fire(note.id, "ack", MEMBER)
    # the member now reads nothing: the answer keeps only the public fields, the step is stored
    assert moved.data == {"title": title}
    assert (moved.state, moved.version) == ("seen", 2)
    with pytest.raises(NotFound):
        engine.get(note.id, MEMBER)
    stored = engine.get(note.id, CLERK)
    assert stored.data == {"title": title, "secret": secret, "seen_by": "m1"}


def test_a_start_answers_only_what_its_actor_may_read(engine: Engine) -> None:
    note = engine.start("note", {"title": "t", "secret": "s"}, GUEST)
    assert note.data == {"title": "t"}
    assert engine.get(note.id, CLERK).data == {"title": "t", "secret": "s"}


def test_a_retried_command_answers_as_its_first_call_would(engine: Engine) -> None:
    note = engine.start("note", {"title": "t", "secret": "s"}, CLERK)
    first = engine.fire(note.id, "ack", MEMBER, command_id="ack-1")
    again = engine.fire(note.id, "ack", MEMBER, command_id="ack-1")
    assert first.data == again.data == {"title": "t"}
    assert again.version == first.version == 2


@contextlib.contextmanager
def served(tmp_path: Path) -> Iterator[tuple[Engine, str, str, Callable[[Actor], dict[str, str]]]]:
    """A note started by the clerk in a SQLite file, the HTTP server over it: the engine, the
    note's id, the server's address, and the headers of a token for an actor."""
    url = f"sqlite:///{tmp_path / 'x.db'}"
    tokens = token_store_for(url)
    with open_store(url) as store:
        engine = _engine(store)
        note = engine.start("note", {"title": "t", "secret": "s"}, CLERK)
        with serve_in_thread(create_app(engine, tokens)) as base:
            yield engine, note.id, base, lambda a: {"Authorization": f"Bearer {tokens.create(a)}"}


def test_the_http_answer_to_a_fire_holds_no_field_the_caller_may_not_read(
    tmp_path: Path,
) -> None:
    with served(tmp_path) as (_, note_id, base, auth):
        member, clerk = auth(MEMBER), auth(CLERK)
        seen = httpx.get(f"{base}/instances/{note_id}", headers=member)
        assert seen.status_code == 200 and seen.json()["data"] == {"title": "t"}
        r = httpx.post(f"{base}/instances/{note_id}/fire", json={"trigger": "ack"}, headers=member)
        assert r.status_code == 200, r.text
        assert r.json()["data"] == {"title": "t"}
        assert r.json()["state"] == "seen" and r.headers["ETag"] == '"2"'
        whole = httpx.get(f"{base}/instances/{note_id}", headers=clerk).json()
        assert whole["data"] == {"title": "t", "secret": "s", "seen_by": "m1"}


ADMIN = Actor.of("a1", "admin", org="city")  # the note's rules grant an admin no reading


def test_an_admin_step_answers_only_what_the_admin_may_read(engine: Engine) -> None:
    """Suspend, resume and set a state by hand: each answers the instance after its row as
    get would show it to the admin (here its public fields), the step stored whole."""
    note = engine.start("note", {"title": "t", "secret": "s"}, CLERK)
    held = engine.suspend(note.id, ADMIN, "a complaint")
    assert held.data == {"title": "t"} and held.suspended_at is not None
    again = engine.resume(note.id, ADMIN, "answered")
    assert again.data == {"title": "t"} and again.suspended_at is None
    moved = engine.set_state(note.id, "seen", ADMIN, "read on paper")
    assert (moved.state, moved.version, moved.data) == ("seen", 4, {"title": "t"})
    assert engine.get(note.id, CLERK).data == {"title": "t", "secret": "s"}


def test_the_http_admin_routes_answer_only_what_the_admin_may_read(tmp_path: Path) -> None:
    with served(tmp_path) as (engine, note_id, base, auth):
        for route, body in (
            ("suspend", {"reason": "a complaint"}),
            ("resume", {"reason": "answered"}),
            ("state", {"state": "seen", "reason": "read on paper"}),
        ):
            to = f"{base}/admin/instances/{note_id}/{route}"
            r = httpx.post(to, json=body, headers=auth(ADMIN))
            assert r.status_code == 200, r.text
            assert r.json()["data"] == {"title": "t"}, route
        assert engine.get(note_id, CLERK).data == {"title": "t", "secret": "s"}


# a member sees an open task (its public title); one who claims it reads it whole from then on
TASK = """
id: task
version: 1
title: {zh: 任务, en: Task}
roles:
  clerk: {zh: 办事员}
  member: {zh: 委员}
read:
  see:
    - roles: [member]
  data:
    - roles: [clerk]
    - named: [data.owner]
start:
  roles: [clerk]
data:
  title: {type: string, required: true, public: true, max_length: 50}
  secret: {type: string, max_length: 50}
  owner: {type: string, max_length: 50}
states:
  open: {initial: true, label: {zh: 待办}}
  done: {final: true, label: {zh: 已办}}
transitions:
  - trigger: claim
    from: open
    to: open
    roles: [member]
    set: {owner: actor.id}
  - trigger: drop
    from: open
    to: open
    roles: [member]
    set: {owner: "null"}
  - trigger: finish
    from: open
    to: done
    roles: [clerk]
"""


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_fire_that_changes_what_its_actor_reads_answers_at_the_new_level(
    kind: str, tmp_path: Path
) -> None:
    """Claiming grants the member the data level, dropping takes it back: each answer shows
    the instance at the level the step left, not the one the actor read it at before."""
    with contextlib.ExitStack() as stack:
        store = (
            MemoryStore()
            if kind == "memory"
            else stack.enter_context(open_store(f"sqlite:///{tmp_path / 'x.db'}"))
        )
        engine = Engine(store, Registry.from_texts([("task.yaml", TASK)]))  # type: ignore[arg-type]
        task = engine.start("task", {"title": "t", "secret": "s"}, CLERK)
        assert engine.get(task.id, MEMBER).data == {"title": "t"}
        claimed = engine.fire(task.id, "claim", MEMBER)
        assert claimed.data == {"title": "t", "secret": "s", "owner": "m1"}
        dropped = engine.fire(task.id, "drop", MEMBER)
        assert dropped.data == {"title": "t"}
        # a step that leaves the readers as they were answers at the level read before it
        again = engine.fire(task.id, "drop", MEMBER)
        assert again.data == {"title": "t"} and again.version == 4
