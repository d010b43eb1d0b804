"""``validate`` lists every problem of a file at once, in YAML terms, and an edited file cannot
drift silently from the text its stored instances run."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from xieshang import (
    Actor,
    DefinitionError,
    Engine,
    FixedClock,
    InvalidPayload,
    Registry,
    load_definition,
)
from xieshang.adapters.cli import app
from xieshang.adapters.drift import definition_drift
from xieshang.adapters.sql.store import open_store
from xieshang.shape_errors import allowed_keys
from xieshang.workflows import BUNDLED_DIR
from xieshang.yamlsafe import read_yaml

FIXTURES = Path(__file__).parent / "fixtures"
MINIMAL = (FIXTURES / "valid" / "minimal.yaml").read_text(encoding="utf-8")
PROPOSAL = yaml.safe_load((BUNDLED_DIR / "proposal.yaml").read_text(encoding="utf-8"))
PYDANTIC_WORDS = re.compile(
    r"Input should be|instance of|ParamSpec|FieldSpec|TransitionSpec|StateSpec|Label\b|"
    r"TimerSpec|SpawnSpec|tuple|dict\b|\bstr\b|\bint\b"
)

Mutation = Callable[[dict[str, Any]], tuple[str, tuple[str | int, ...], str]]


def _index(data: dict[str, Any], test: Callable[[dict[str, Any]], bool], nth: int = 0) -> int:
    return [i for i, t in enumerate(data["transitions"]) if test(t)][nth]


def unknown_transition_key(d: dict[str, Any]) -> tuple[str, tuple[str | int, ...], str]:
    i = _index(d, lambda t: "reason_required" not in t, 2)
    d["transitions"][i]["reason"] = True
    return "XS010", ("transitions", i, "reason"), "did you mean 'reason_required'?"


def bare_param(d: dict[str, Any]) -> tuple[str, tuple[str | int, ...], str]:
    d["params"]["reply_window"] = "3 months"
    return "XS010", ("params", "reply_window"), "expected a mapping such as {type: duration"


def version_as_text(d: dict[str, Any]) -> tuple[str, tuple[str | int, ...], str]:
    d["version"] = str(d["version"])
    return "XS010", ("version",), "expected a whole number, got the text"


def unreachable_state(d: dict[str, Any]) -> tuple[str, tuple[str | int, ...], str]:
    d["states"]["orphan"] = {"label": {"zh": "孤立"}}
    d["transitions"].append(
        {"trigger": "orphan_close", "from": "orphan", "to": "closed", "roles": ["member"]}
    )
    return "XS104", ("states", "orphan"), "cannot be reached"


def stuck_state(d: dict[str, Any]) -> tuple[str, tuple[str | int, ...], str]:
    d["states"]["stuck"] = {"label": {"zh": "卡住"}}
    d["transitions"].append(
        {"trigger": "get_stuck", "from": "draft", "to": "stuck", "roles": ["member"]}
    )
    return "XS105", ("states", "stuck"), "no way out"


def misspelt_target(d: dict[str, Any]) -> tuple[str, tuple[str | int, ...], str]:
    i = _index(d, lambda t: t["to"] == "submitted")
    d["transitions"][i]["to"] = "submited"
    return "XS101", ("transitions", i, "to"), "did you mean 'submitted'?"


def unknown_role(d: dict[str, Any]) -> tuple[str, tuple[str | int, ...], str]:
    i = _index(d, lambda t: "system" not in t.get("roles", []) and "join" not in t, 5)
    d["transitions"][i]["roles"] = [*d["transitions"][i]["roles"], "chairman"]
    return "XS110", ("transitions", i, "roles", len(d["transitions"][i]["roles"]) - 1), "chairman"


def bad_field_type(d: dict[str, Any]) -> tuple[str, tuple[str | int, ...], str]:
    d["data"]["body"]["type"] = "txt"
    # a file that names its own types (proposal.yaml does) reads an unknown one as XS134
    code = "XS134" if "types" in d else "XS010"
    return code, ("data", "body", "type"), "did you mean 'text'?"


def bad_guard(d: dict[str, Any]) -> tuple[str, tuple[str | int, ...], str]:
    i = _index(d, lambda t: "guard" in t, 1)
    d["transitions"][i]["guard"] = "data.title == "
    return "XS120", ("transitions", i, "guard"), ""


def misspelt_timer_trigger(d: dict[str, Any]) -> tuple[str, tuple[str | int, ...], str]:
    d["timers"][0]["fire"] = d["timers"][0]["fire"] + "x"
    return "XS113", ("timers", 0, "fire"), "did you mean"


def unknown_top_key(d: dict[str, Any]) -> tuple[str, tuple[str | int, ...], str]:
    d["descripton"] = "typo"
    return "XS010", ("descripton",), "did you mean 'description'?"


MUTATIONS: list[Mutation] = [
    unknown_transition_key,
    bare_param,
    version_as_text,
    unreachable_state,
    stuck_state,
    misspelt_target,
    unknown_role,
    bad_field_type,
    bad_guard,
    misspelt_timer_trigger,
    unknown_top_key,
]


def problems_of(text: str) -> list[Any]:
    with pytest.raises(DefinitionError) as info:
        load_definition(text, "p.yaml")
    return info.value.problems


def test_the_bundled_proposal_workflow_loads_alone() -> None:
    """The base of the mutations is valid, so every problem below is a mutation's."""
    assert load_definition(yaml.safe_dump(PROPOSAL, allow_unicode=True)).id == "proposal"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sets(st.sampled_from(MUTATIONS), min_size=1))
def test_a_file_with_k_independent_mistakes_reports_all_k(chosen: set[Mutation]) -> None:
    """Shape errors do not hide reference or graph problems: each mutation's problem is
    reported with its code, its path and the line the path is on, in one run."""
    data = copy.deepcopy(PROPOSAL)
    expected = [m(data) for m in sorted(chosen, key=MUTATIONS.index)]
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    located, _ = read_yaml(text)
    assert located is not None
    problems = problems_of(text)
    found = {(p.code, p.path, p.line): p.message for p in problems}
    for code, path, words in expected:
        key = (code, _fmt(path), located.line_of(path))
        assert key in found, f"{key} not in {sorted(found)}"
        assert words in found[key]
    assert len(problems) == len(expected)


def _fmt(path: tuple[str | int, ...]) -> str:
    from xieshang.yamlsafe import format_path

    return format_path(path)


def test_shape_and_graph_problems_come_in_one_run() -> None:
    """The example of the format's docs: an unknown key, a param written as its default, a
    state nothing reaches and a state nothing leaves, four problems at once."""
    text = (
        MINIMAL.replace(
            "reply_window: {type: duration, default: 3 months}", "reply_window: 3 months"
        )
        .replace("    roles: [reviewer]\n", "    roles: [reviewer]\n    reason: true\n", 1)
        .replace(
            "  closed: {final", "  parked: {label: 搁置}\n  lost: {label: 丢失}\n  closed: {final"
        )
        .replace(
            "timers:",
            "  - {trigger: park, from: handling, to: parked, roles: [clerk]}\n"
            "  - {trigger: unpark, from: lost, to: closed, roles: [clerk]}\ntimers:",
        )
    )
    assert [str(p) for p in problems_of(text)] == [
        "p.yaml:9: XS010 params.reply_window: expected a mapping such as {type: duration, "
        'default: "5 working days"}, got the text "3 months"',
        "p.yaml:17: XS105 states.parked: state 'parked' is not final and has no way out",
        "p.yaml:18: XS104 states.lost: state 'lost' cannot be reached from the initial state "
        "'submitted'",
        "p.yaml:25: XS010 transitions[0].reason: unknown key; did you mean 'reason_required'?",
    ]


def test_a_broken_transition_hides_only_what_depends_on_it() -> None:
    """A transition whose target is not a state name is left out, its source may lead anywhere:
    no state is called a trap or unreachable because of it, and the timer firing its trigger
    is not called unknown; the rest is still checked."""
    text = MINIMAL.replace("    to: replied\n", "    to: [replied]\n").replace(
        "roles: [reviewer, system]", "roles: [reviewer, system, clark]"
    )
    assert [(p.code, p.path) for p in problems_of(text)] == [
        ("XS010", "transitions[1].to"),
        ("XS110", "transitions[2].roles[2]"),
    ]
    assert 'expected text, got the list ["replied"]' in problems_of(text)[0].message


def test_a_misspelt_required_key_is_one_problem() -> None:
    """``labl`` for ``label`` is reported once, as the unknown key with its suggestion, not also
    as a missing ``label``; the broken state stays declared for the transitions naming it."""
    text = MINIMAL.replace("handling: {label:", "handling: {labl:")
    assert [str(p) for p in problems_of(text)] == [
        "p.yaml:15: XS010 states.handling.labl: unknown key; did you mean 'label'?"
    ]


def test_a_misspelt_section_hides_the_checks_of_what_it_declares() -> None:
    """``role:`` for ``roles:`` is one problem: the roles the transitions name are not called
    unknown, since the section that declares them is the broken one."""
    text = MINIMAL.replace("roles:\n  clerk", "role:\n  clerk")
    assert [str(p) for p in problems_of(text)] == [
        "p.yaml:5: XS010 role: unknown key; did you mean 'roles'?"
    ]


KEYS_BY_PLACE: list[tuple[str, tuple[str | int, ...], str]] = [
    ("top level", (), "timers"),
    ("a state", ("states", "handling"), "label"),
    ("a transition", ("transitions", 0), "trigger"),
    ("a param", ("params", "reply_window"), "default"),
    ("a field", ("data", "title"), "max_length"),
    ("a timer", ("timers", 0), "after"),
]


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(KEYS_BY_PLACE),
    st.data(),
)
def test_an_unknown_key_one_edit_from_a_real_key_gets_the_suggestion(
    place: tuple[str, tuple[str | int, ...], str], data: st.DataObject
) -> None:
    """At every level, a key one edit away (a letter dropped, doubled or changed) from a key of
    that level is reported with ``did you mean`` and a key of that level; when no other key is
    as close, the one it came from."""
    _, owner, key = place
    allowed = allowed_keys(owner)
    assert key in allowed
    i = data.draw(st.integers(0, len(key) - 1))
    edit = data.draw(st.sampled_from(["drop", "double", "change"]))
    letter = data.draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz"))
    typo = {
        "drop": key[:i] + key[i + 1 :],
        "double": key[:i] + key[i] + key[i:],
        "change": key[:i] + letter + key[i + 1 :],
    }[edit]
    if typo in allowed or not typo:
        return
    tree = yaml.safe_load(MINIMAL)
    target = tree
    for part in owner:
        target = target[part]
    target[typo] = target.pop(key)
    problems = problems_of(yaml.safe_dump(tree, allow_unicode=True))
    path = ".".join(str(p) for p in owner)
    path = re.sub(r"\.(\d+)", r"[\1]", path)
    mine = [p for p in problems if p.path == (f"{path}.{typo}" if path else typo)]
    assert len(mine) == 1, [str(p) for p in problems]
    match = re.search(r"unknown key; did you mean '([^']+)'\?", mine[0].message)
    assert match is not None, mine[0].message
    assert match.group(1) in allowed


MESSAGES_OF = [
    ("params:\n  reply_window: {type: duration, default: 3 months}", "params:\n  reply_window: 5"),
    ("roles: [reviewer]", "roles: reviewer"),
    ("version: 1", "version: '1'"),
    ("version: 1", "version: 0"),
    ("{type: string, required: true, max_length: 200}", "string"),
    ("{type: string, required: true, max_length: 200}", "{type: string, max_length: 0}"),
    ("reply_class: {type: enum, values: [A, B, C]}\n", "reply_class: {type: enum}\n"),
    ("replied: {label: {zh: 已答复}}", "replied: [已答复]"),
    ("replied: {label: {zh: 已答复}}", "replied: {label: {zh: ''}}"),
    ("title: {zh: 最小流程, en: Minimal}", "title: [x]"),
    ("roles:\n  clerk", "calendar: lunar\nroles:\n  clerk"),
    ("roles:\n  clerk", "bound_roles: 5\nroles:\n  clerk"),
    ("roles:\n  clerk", "read: {see: 5}\nroles:\n  clerk"),
    ("    to: handling\n", "    to: handling\n    join: {count: 0}\n"),
    ("    to: handling\n", "    to: handling\n    visibility: secret\n"),
    ("    to: handling\n", "    to: handling\n    from: []\n"),
    ("    to: handling\n", "    to: handling\n    payload: [a]\n"),
    ("    to: handling\n", "    to: handling\n    reason_required: maybe\n"),
    ("    to: handling\n", "    to: handling\n    spawn: {workflow: x}\n"),
    ("    to: handling\n", "    to: handling\n    label: 5\n"),
    ("after: params.reply_window", "after: [3 months]"),
    ("  - in: replied", "  - in: 5"),
    ("data:\n", "data:\n  Bad: {type: string}\n"),
]


@pytest.mark.parametrize(("old", "new"), MESSAGES_OF, ids=[n for _, n in MESSAGES_OF])
def test_no_message_names_a_class_or_says_input_should_be(old: str, new: str) -> None:
    """Every shape problem says what was expected in YAML terms and what the file holds, never
    pydantic's words (``Input should be``, ``instance of``) or a class name."""
    assert old in MINIMAL
    problems = problems_of(MINIMAL.replace(old, new, 1))
    assert problems
    for p in problems:
        assert not PYDANTIC_WORDS.search(p.message), str(p)
        assert p.line is not None and p.code.startswith("XS")


# -- drift of a file from the text its instances run -----------------------------------------

EDITED = MINIMAL.replace(
    "payload: {reply_class: {type: enum, values: [A, B, C], required: true}}",
    "payload: {reply_class: {type: enum, values: [A, B, C], required: true}, "
    "report_due: {type: date}}",
)
CLOCK = FixedClock(__import__("datetime").datetime.fromisoformat("2026-03-02T09:00:00+08:00"))


def _started(url: str, count: int) -> tuple[Engine, list[str]]:
    engine = Engine(open_store(url), Registry([load_definition(MINIMAL)]), CLOCK)
    ids = [
        engine.start("minimal", {"title": f"t{n}"}, Actor.of("u", "clerk")).id for n in range(count)
    ]
    return engine, ids


def test_an_edited_file_with_the_same_version_warns_with_the_count(tmp_path: Path) -> None:
    """Three stored instances run minimal@1; the file now holds another text under the same
    version: the drift is reported with that count, and not for the unchanged text."""
    url = f"sqlite:///{tmp_path / 'xs.db'}"
    _started(url, 3)[0].store.close()  # type: ignore[attr-defined]
    assert definition_drift(url, [load_definition(MINIMAL)]) == []
    assert definition_drift(url, [load_definition(EDITED)]) == [
        "minimal@1: the file differs from the text 3 stored instances run; give it a new version"
    ]
    assert (
        definition_drift(url, [load_definition(EDITED.replace("version: 1", "version: 2"))]) == []
    )


def test_validate_with_a_database_warns_of_the_drift_and_still_passes(tmp_path: Path) -> None:
    """``xieshang validate --db`` prints the warning on stderr, in JSON as ``warnings``; the
    file is valid, so the exit code is 0."""
    url = f"sqlite:///{tmp_path / 'xs.db'}"
    _started(url, 2)[0].store.close()  # type: ignore[attr-defined]
    edited = tmp_path / "minimal.yaml"
    edited.write_text(EDITED, encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["validate", str(edited), "--db", url])
    assert result.exit_code == 0, result.output
    assert (
        "warning: minimal@1: the file differs from the text 2 stored instances run; give it a "
        "new version" in result.stderr
    )
    result = runner.invoke(app, ["validate", str(edited), "--db", url, "--json"])
    assert result.exit_code == 0
    assert '"warnings": [\n    "minimal@1: the file differs from the text 2 stored' in result.stdout


def test_a_field_the_pinned_definition_lacks_names_that_definition(
    sql_url: str, request: pytest.FixtureRequest
) -> None:
    """An instance started on minimal@1 runs that text after the file gains ``report_due``:
    the refusal says which definition the instance runs (workflow@version, short hash, when it
    started) and that instances keep it, instead of a bare "not a declared field"."""
    engine, (instance_id,) = _started(sql_url, 1)
    pinned = engine.registry.get("minimal").hash
    engine.fire(instance_id, "accept", Actor.of("r", "reviewer"))
    current = load_definition(EDITED)
    later = Engine(open_store(sql_url), Registry([current]), CLOCK)
    request.addfinalizer(later.store.close)  # type: ignore[attr-defined]
    request.addfinalizer(engine.store.close)  # type: ignore[attr-defined]
    with pytest.raises(InvalidPayload) as info:
        later.fire(
            instance_id,
            "reply",
            Actor.of("c", "clerk"),
            {"reply_class": "A", "report_due": "2026-04-01"},
        )
    assert info.value.errors == [
        {
            "field": "report_due",
            "error": f"not a declared field in minimal@1 (hash {pinned[:12]}, started "
            "2026-03-02T01:00:00.000000+00:00), which this instance runs; the current file "
            f"minimal@1 "
            f"(hash {current.hash[:12]}) declares it, but instances keep the definition they "
            "started on (a file with a new version moves them by a migration: xieshang "
            "migrate)",
        }
    ]
    assert later.get(instance_id, Actor.of("c", "clerk")).state == "handling"
