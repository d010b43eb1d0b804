"""Redaction: a personal value leaves the history, and the proof still holds.

A sealed row's hash covers each payload field by a salted digest, so redacting a field keeps
the chain, the ledger and the replay true; tampering around a redaction is still found.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_contract import MEMBER, propose, sql_connection, to_filed

from xieshang import (
    Actor,
    CommandRefused,
    Engine,
    FixedClock,
    Forbidden,
    HistoryEntry,
    InvalidPayload,
    Registry,
)
from xieshang.adapters.memory import MemoryStore
from xieshang.adapters.sql import open_store
from xieshang.records import REDACTED, field_digest

ADMIN = Actor.of("admin-1", "admin", org="gy")
PHONE = "13812345678"
ID_CARD = "520102199001011234"

# a guard that reads the very field a redaction would remove: the replay would need the value
NEEDS_VALUE = """\
id: needs_value
version: 1
title: {zh: 读取字段的守卫}
roles:
  member: {zh: 委员}
start:
  roles: [member]
data:
  title: {type: string, required: true}
  contact: {type: string}
states:
  open: {initial: true, label: {zh: 开}}
  done: {final: true, label: {zh: 完}}
transitions:
  - trigger: finish
    from: open
    to: done
    roles: [member]
    payload:
      code: {type: string, required: true}
    guard: payload.code.startsWith('A')
    set: {contact: payload.code}
"""


@pytest.fixture
def engine(sql_url: str, registry: Registry, clock: FixedClock) -> Iterator[Engine]:
    with open_store(sql_url) as store:
        yield Engine(store, registry, clock)


def with_body(engine: Engine, body: str) -> str:
    """A filed proposal whose body (not public) holds ``body``."""
    iid = propose(engine, "关于老旧小区加装电梯的建议", body=body).id
    to_filed(engine, iid)
    return iid


def stored_text(url: str) -> str:
    """Every history, instance and outbox value as the database holds it."""
    with sql_connection(url) as (conn, _):
        parts = []
        for table in ("history", "instances", "outbox"):
            for row in conn.execute(f"SELECT * FROM {table}").fetchall():
                parts.append(json.dumps([str(v) for v in row], ensure_ascii=False))
    return "\n".join(parts)


def test_a_redacted_value_leaves_every_row_and_the_proof_holds(
    engine: Engine, sql_url: str
) -> None:
    """The body with a phone number is redacted: gone from history and data, the redaction is
    row 5 by the admin with its reason, and verify (chains, replay, ledger) finds nothing."""
    iid = with_body(engine, f"联系电话 {PHONE}，请尽快处理")
    other = with_body(engine, "没有个人信息")
    before = engine.store.history(iid)
    assert PHONE in stored_text(sql_url)

    after = engine.redact(iid, ["body"], ADMIN, "提案人要求删除电话号码")

    # the admin's answer holds what it reads of the proposal (its public fields); the store
    # holds the redacted body
    assert after.version == 5 and set(after.data) == set(engine.get(iid, ADMIN).data)
    assert "body" not in after.data and engine.get(iid).data["body"] == REDACTED
    rows = engine.store.history(iid)
    assert [r.hash for r in rows[:4]] == [r.hash for r in before]
    assert rows[0].payload["body"] == REDACTED and rows[0].redacted_fields() == ["body"]
    assert rows[0].payload["title"] == "关于老旧小区加装电梯的建议"
    last = rows[4]
    assert (last.trigger, last.role, last.reason, last.visibility) == (
        "redact",
        "admin",
        "提案人要求删除电话号码",
        "internal",
    )
    assert last.payload == {"fields": ["body"], "rows": [1], "data": ["body"]}
    assert PHONE not in stored_text(sql_url)
    assert engine.store.history(other)[0].payload["body"] == "没有个人信息"
    assert engine.verify() == []
    assert engine.replay(iid).data == engine.get(iid).data


def test_the_digest_kept_is_the_salted_digest_of_the_value(engine: Engine) -> None:
    """Whoever holds the value and its salt (taken before) can show it was the one redacted."""
    iid = with_body(engine, ID_CARD)
    first = engine.store.history(iid)[0]
    assert first.seal is not None
    salt = first.seal["body"].removeprefix("salt:")
    engine.redact(iid, ["body"], ADMIN, "身份证号")
    kept = engine.store.history(iid)[0].seal
    assert kept is not None and kept["body"] == "redacted:" + field_digest(salt, ID_CARD)


def test_the_instance_goes_on_after_a_redaction(engine: Engine) -> None:
    """A redaction bumps the version; the next command and verify work as before."""
    iid = with_body(engine, PHONE)
    engine.redact(iid, ["body"], ADMIN, "删除电话")
    office = Actor.of("o1", "supervision_office", org="gy")
    moved = engine.fire(iid, "assign", office, {"mode": "sole", "units": ["U1"]})
    assert (moved.state, moved.version, moved.data["body"]) == ("assigned", 6, REDACTED)
    assert engine.verify() == []


def refused_unchanged(engine: Engine, iid: str, call: Any) -> Exception:
    before = (engine.get(iid).version, [r.to_dict() for r in engine.store.history(iid)])
    with pytest.raises(CommandRefused) as caught:
        call()
    assert (engine.get(iid).version, [r.to_dict() for r in engine.store.history(iid)]) == before
    return caught.value


def test_redaction_refusals_name_why_and_change_nothing(engine: Engine) -> None:
    iid = with_body(engine, PHONE)
    e = refused_unchanged(engine, iid, lambda: engine.redact(iid, ["body"], MEMBER, "x"))
    assert isinstance(e, Forbidden) and e.allowed == ["admin"]
    e = refused_unchanged(engine, iid, lambda: engine.redact(iid, ["phone"], ADMIN, "x"))
    assert isinstance(e, InvalidPayload)
    assert e.errors[0]["field"] == "phone" and "body" in e.errors[0]["error"]
    e = refused_unchanged(engine, iid, lambda: engine.redact(iid, ["body"], ADMIN, "  "))
    assert isinstance(e, InvalidPayload) and e.errors == [{"field": "reason", "error": "required"}]
    e = refused_unchanged(engine, iid, lambda: engine.redact(iid, ["title"], ADMIN, "x"))
    assert "public data fields title" in e.message
    engine.redact(iid, ["body"], ADMIN, "删除电话")
    e = refused_unchanged(engine, iid, lambda: engine.redact(iid, ["body"], ADMIN, "again"))
    assert "already redacted" in e.message


def test_a_value_the_replay_needs_cannot_be_redacted(tmp_path: Path, clock: FixedClock) -> None:
    """A guard read the field: the history would no longer replay, so the redaction is refused."""
    registry = Registry.from_texts([("needs_value.yaml", NEEDS_VALUE)])
    with open_store(f"sqlite:///{tmp_path / 'x.db'}") as store:
        engine = Engine(store, registry, clock)
        iid = engine.start("needs_value", {"title": "t"}, MEMBER).id
        engine.fire(iid, "finish", MEMBER, {"code": "A-13812345678"})
        e = refused_unchanged(engine, iid, lambda: engine.redact(iid, ["code"], ADMIN, "x"))
        assert "would no longer replay" in e.message and "finish" in e.message


def test_rows_sealed_before_fields_were_sealed_cannot_be_redacted(
    registry: Registry, clock: FixedClock
) -> None:
    """A row whose hash covers the payload itself (written before seals) is refused by seq."""
    store = MemoryStore()
    engine = Engine(store, registry, clock)
    iid = propose(engine, "旧的", body=PHONE).id
    old = store._history[iid][0]
    store._history[iid][0] = replace(old, seal=None, hash="").sealed()
    e = refused_unchanged(engine, iid, lambda: engine.redact(iid, ["body"], ADMIN, "x"))
    assert "rows [1]" in e.message and "before payload fields were sealed" in e.message


def test_a_redacted_field_given_another_value_is_found(engine: Engine, sql_url: str) -> None:
    """The placeholder is part of the proof: writing a value back in its place is a change."""
    iid = with_body(engine, PHONE)
    engine.redact(iid, ["body"], ADMIN, "删除电话")
    row = engine.store.history(iid)[0]
    forged = json.dumps({**row.payload, "body": "另一段文字"}, ensure_ascii=False)
    with sql_connection(sql_url) as (conn, mark):
        conn.execute(
            f"UPDATE history SET payload = {mark} WHERE instance_id = {mark} AND seq = 1",
            (forged, iid),
        )
    [problem] = engine.verify()
    assert (problem["instance_id"], problem["seq"], problem["kind"]) == (iid, 1, "changed")


def test_a_forged_digest_is_found(engine: Engine, sql_url: str) -> None:
    iid = with_body(engine, PHONE)
    engine.redact(iid, ["body"], ADMIN, "删除电话")
    seal = dict(engine.store.history(iid)[0].seal or {})
    seal["body"] = "redacted:" + "0" * 64
    with sql_connection(sql_url) as (conn, mark):
        conn.execute(
            f"UPDATE history SET seal = {mark} WHERE instance_id = {mark} AND seq = 1",
            (json.dumps(seal), iid),
        )
    [problem] = engine.verify()
    assert (problem["seq"], problem["kind"]) == (1, "changed")


def test_a_redaction_row_rewritten_as_a_members_is_found(
    registry: Registry, clock: FixedClock
) -> None:
    """A redaction row re-attributed and re-hashed (a writer who rebuilds the chain) fails the
    replay's role check: only an admin redacts."""
    store = MemoryStore()
    engine = Engine(store, registry, clock)
    iid = propose(engine, "改写", body=PHONE).id
    engine.redact(iid, ["body"], ADMIN, "删除电话")
    rows = store._history[iid]
    forged = replace(rows[1], actor=MEMBER.to_dict(), role="member", hash="").sealed()
    rows[1] = forged
    store._instances[iid].head_hash = forged.hash
    problem = engine.verify(iid)[0]
    assert problem["kind"] == "role-not-allowed" and "only 'admin' may redact" in problem["message"]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    # text a store keeps: no NUL and no lone surrogate (the engine refuses both at the door)
    value=st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        min_size=1,
        max_size=40,
    ).filter(lambda s: s.strip() and s != REDACTED),
    fields=st.sets(st.sampled_from(["body", "suggested_units", "non_public_reason"]), min_size=1),
)
def test_any_redaction_of_held_fields_verifies_and_removes_the_value(
    registry: Registry, value: str, fields: set[str]
) -> None:
    """Whatever personal text and whichever held fields: the value is gone and verify holds."""
    clock = FixedClock(datetime(2026, 3, 2, 9, tzinfo=timezone(timedelta(hours=8))))
    engine = Engine(MemoryStore(), registry, clock)
    iid = propose(engine, "随机", body=value).id
    engine.fire(
        iid,
        "submit",
        MEMBER,
        {
            "category": "society",
            "suggested_units": [value],
            "is_public": False,
            "non_public_reason": value,
        },
    )
    engine.redact(iid, sorted(fields), ADMIN, "个人信息")
    dumped = json.dumps(
        [r.to_dict()["payload"] for r in engine.store.history(iid)], ensure_ascii=False
    )
    for name in fields:
        for row in engine.store.history(iid)[:2]:
            if name in row.payload:
                assert row.payload[name] == REDACTED
    if fields == {"body", "suggested_units", "non_public_reason"}:
        assert json.dumps(value, ensure_ascii=False) not in dumped
    assert engine.verify() == []


def test_an_old_row_without_seal_hashes_as_before() -> None:
    """Rows written before seals keep the hash they were sealed with: no seal, no digests."""
    row = HistoryEntry(
        instance_id="i",
        seq=1,
        workflow="w",
        workflow_version=1,
        definition_hash="h",
        trigger="start",
        source=None,
        target="s",
        actor={"id": "a"},
        role="r",
        reason=None,
        payload={"x": 1},
        visibility="public",
        occurred_at="t",
        recorded_at="t",
        command_id=None,
        prev_hash="",
    )
    assert row.body()["payload"] == {"x": 1} and "payload_sealed" not in row.body()
    sealed = replace(row, seal={"x": "salt:00"})
    assert sealed.body()["payload"] == {"x": field_digest("00", 1)}
    assert sealed.compute_hash() != row.compute_hash()


def test_the_cli_redacts_and_verify_still_passes(tmp_path: Path) -> None:
    """`audit redact` prints what it did; `audit verify` then passes; a member is refused."""
    from typer.testing import CliRunner

    from xieshang.adapters.cli import app

    runner = CliRunner()
    db = ["--db", f"sqlite:///{tmp_path / 'xs.db'}"]
    started = runner.invoke(
        app,
        [*db, "start", "proposal", "--as", "m1:member@gy", "--json", "--data",
         json.dumps({"title": "t", "first_proposer": "m1", "body": PHONE})],
    )  # fmt: skip
    iid = json.loads(started.stdout)["id"]
    refused = runner.invoke(
        app,
        [*db, "audit", "redact", iid, "--field", "body", "--reason", "x", "--as", "m1:member@gy"],
    )
    assert refused.exit_code == 1 and "may not redact; allowed roles: admin" in refused.output
    done = runner.invoke(
        app,
        [*db, "audit", "redact", iid, "--field", "body", "--reason", "删除电话",
         "--as", "a1:admin@gy", "--json"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["redaction"] == {
        "fields": ["body"],
        "rows": [1],
        "data": ["body"],
    }
    verified = runner.invoke(app, [*db, "audit", "verify", "--json"])
    assert verified.exit_code == 0 and json.loads(verified.stdout)["problems"] == []
