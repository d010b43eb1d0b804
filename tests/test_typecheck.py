"""Type checks at load: every expression is checked against the types the definition declares.

Each mistake is a problem with its own code, the line of the expression and the fix in the
file's terms: a value that does not fit its field (XS127), types that cannot meet in a
comparison or arithmetic (XS128), a date or duration literal that does not parse (XS129), a
function called wrongly (XS130), spawn data against the child's fields (XS131, XS132). What is
of unknown type is never reported, so every bundled workflow loads as before.
"""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from xieshang import DefinitionError, load_definition
from xieshang.adapters.cli import app
from xieshang.date_functions import date_functions
from xieshang.expressions import DOMAIN_FUNCTIONS, LOOKUP, compile_expression
from xieshang.registry import Registry
from xieshang.typecheck_parse import parse
from xieshang.typecheck_types import SIGNATURES, signatures
from xieshang.workflows import bundled_files

TYPED = """\
id: typed
version: 1
title: {zh: 类型检查}
roles:
  office: {zh: 办公室}
data:
  n: {type: int}
  s: {type: string}
  d: {type: date}
  ts: {type: datetime}
  flag: {type: bool}
  share: {type: number}
  mode: {type: enum, values: [sole, split]}
  xs: {type: list, items: string}
  obj: {type: object}
  rows: {type: list, items: object}
params:
  window: {type: duration, default: 5 working days}
  limit: {type: int, default: 3}
states:
  open: {initial: true, label: {zh: 开}}
  done: {final: true, label: {zh: 完}}
transitions:
  - trigger: finish
    from: open
    to: done
    roles: [office]
    payload:
      unit: {type: string}
      on: {type: date}
    guard: GUARD
    set: {SET}
"""
GUARD_LINE = TYPED.splitlines().index("    guard: GUARD") + 1
SET_LINE = GUARD_LINE + 1


def typed(guard: str = "true", **sets: str) -> str:
    """The TYPED workflow with this guard and these effects, each on its line."""
    body = ", ".join(f"{k}: {json.dumps(v)}" for k, v in sets.items())
    return TYPED.replace("GUARD", json.dumps(guard)).replace("SET", body)


def problems(*texts: str) -> list[tuple[str, int | None, str]]:
    """(code, line, path) of every problem of these files loaded together."""
    try:
        Registry.from_texts((f"f{i}.yaml", text) for i, text in enumerate(texts))
    except DefinitionError as e:
        return [(p.code, p.line, p.path) for p in e.problems]
    return []


def messages(text: str) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        load_definition(text)
    return [f"{p.code} {p.message}" for p in info.value.problems]


# -- a value that does not fit its field: XS127 ------------------------------------------------


def test_set_of_text_into_an_int_field_is_refused_with_the_conversion() -> None:
    """`set: {n: data.s}` writes text into an int field: XS127 on the set's line."""
    text = typed(n="data.s")
    assert problems(text) == [("XS127", SET_LINE, "transitions[0].set.n")]
    assert messages(text) == [
        "XS127 `data.s` gives text, but field 'n' is an int; write `n: int(data.s)`"
    ]


def test_set_of_now_into_a_date_field_names_date_of_now() -> None:
    """A timestamp does not fit a date field (data holds dates as 'YYYY-MM-DD')."""
    assert messages(typed(d="now")) == [
        "XS127 `now` gives a timestamp, but field 'd' is a date (text 'YYYY-MM-DD'); "
        "write `d: date(now)`"
    ]


def test_each_branch_of_a_conditional_set_must_fit() -> None:
    """`c ? a : b` fits only if both a and b do; the branch that does not is named."""
    assert messages(typed(n="data.flag ? 1 : data.s")) == [
        "XS127 `data.s` gives text, but field 'n' is an int; write `n: int(data.s)`"
    ]
    assert problems(typed(n="data.flag ? 1 : null")) == []


def test_a_literal_is_checked_by_the_fields_own_validator() -> None:
    """An enum literal must be one of the values; a list of the wrong items does not fit."""
    assert messages(typed(mode="'solo'")) == [
        "XS127 `'solo'` does not fit field 'mode', which is text, one of sole, split: "
        "Input should be 'sole' or 'split'"
    ]
    assert problems(typed(xs="[data.n]")) == [("XS127", SET_LINE, "transitions[0].set.xs")]
    assert problems(typed(xs="data.xs + [payload.unit]", s="data.n > 1 ? 'a' : 'b'")) == []


def test_a_guard_that_gives_no_bool_is_refused() -> None:
    """A guard gives a bool (XS127 naming a comparison to write)."""
    assert messages(typed("data.n")) == [
        "XS127 `data.n` gives an int; the guard must give a bool; compare it, e.g. `data.n != null`"
    ]


# -- types that cannot meet: XS128 ------------------------------------------------------------


@pytest.mark.parametrize(
    ("guard", "message"),
    [
        (
            "now < data.d",
            "`now < data.d` compares a timestamp with a date (text 'YYYY-MM-DD'); compare "
            "dates: write date(now)",
        ),
        (
            "data.n == data.s",
            "`data.n == data.s` compares an int with text (never equal); convert one side: "
            "int(...) of the text, or string(data.n)",
        ),
        (
            "data.d < data.ts",
            "`data.d < data.ts` compares a date (text 'YYYY-MM-DD') with a datetime (ISO text); "
            "write date(data.ts)",
        ),
        (
            "data.n + 1.5 > 2.0",
            "`data.n + 1.5` does + on an int and a double; convert one side, e.g. double(data.n)",
        ),
        (
            "data.d + 5 > data.d",
            "`data.d + 5` does + on a date (text 'YYYY-MM-DD') and an int (a date is text at run "
            "time); write add_workdays(date, n), or due_date(date, '5 working days')",
        ),
        (
            "data.mode == 'solo'",
            "`data.mode == 'solo'` is always false: 'solo' is not one of sole, split",
        ),
        ("data.flag && data.n", "`data.n` is an int; && takes a bool"),
        (
            "data.xs.exists(x, x == 1)",
            "`x == 1` compares text with an int (never equal); "
            "convert one side: int(...) of the text, or string(1)",
        ),
    ],
)
def test_comparison_or_arithmetic_between_types_that_cannot_meet(guard: str, message: str) -> None:
    """Each is XS128 on the guard's line, naming both types and how to make them meet."""
    assert problems(typed(guard)) == [("XS128", GUARD_LINE, "transitions[0].guard")]
    assert messages(typed(guard)) == [f"XS128 {message}"]


def test_a_part_found_wrong_is_reported_once() -> None:
    """The mistake inside a larger expression is reported, not again by what contains it; the
    same mistake written twice in one expression is one problem at its path."""
    assert problems(typed("data.n + data.s > 0 && data.n + data.s < 9")) == [
        ("XS128", GUARD_LINE, "transitions[0].guard"),
    ]
    assert problems(typed("data.n + data.s > 0 && data.n + data.d < 9")) == [
        ("XS128", GUARD_LINE, "transitions[0].guard"),
        ("XS128", GUARD_LINE, "transitions[0].guard"),
    ]


# -- literals that do not parse: XS129 ---------------------------------------------------------


def test_a_duration_literal_that_cannot_parse_is_refused_at_load() -> None:
    """'5 weekdays' is read with the runtime's own duration parser, once, at load ('-5 working
    days', counting backwards, is one due_date accepts)."""
    assert problems(typed(d="due_date(data.d, '-5 working days')")) == []
    text = typed(d="due_date(data.d, '5 weekdays')")
    assert problems(text) == [("XS129", SET_LINE, "transitions[0].set.d")]
    assert messages(text) == [
        "XS129 `'5 weekdays'` is not a duration; write e.g. '5 working days', '10 days', "
        "'3 months' (argument of due_date)"
    ]


@pytest.mark.parametrize(
    ("guard", "message"),
    [
        (
            "data.d < '2024-13-01'",
            "`data.d < '2024-13-01'` compares a date with '2024-13-01', "
            "which is not a date (month must be in 1..12); write e.g. '2024-10-10'",
        ),
        (
            "year('2024/10/10') > 2000",
            "`'2024/10/10'` is not a date; write e.g. '2024-10-10' (argument of year)",
        ),
        ("now < timestamp('yesterday')", "`'yesterday'` is not a CEL timestamp"),
    ],
)
def test_a_date_literal_that_cannot_parse_is_refused_at_load(guard: str, message: str) -> None:
    assert problems(typed(guard)) == [("XS129", GUARD_LINE, "transitions[0].guard")]
    (found,) = messages(typed(guard))
    assert found.startswith(f"XS129 {message}")


def test_good_literals_and_an_empty_text_beside_a_date_pass() -> None:
    text = typed(
        "data.d >= '2024-10-10' && data.d != '' && now > timestamp('2024-01-01T00:00:00Z')",
        d="due_date('2024-10-10', '3 months')",
    )
    assert problems(text) == []


# -- calls: XS130 ------------------------------------------------------------------------------


def test_a_function_called_with_the_wrong_number_of_arguments_names_its_signature() -> None:
    assert messages(typed(d="due_date(data.d)")) == [
        "XS130 `due_date(data.d)` calls due_date with 1 argument; due_date takes "
        "(date|timestamp, duration) -> date"
    ]


def test_a_function_called_with_an_argument_of_the_wrong_type_names_it() -> None:
    assert messages(typed("year(data.n) > 2000")) == [
        "XS130 `year(data.n)` passes an int as argument 1 of year (`data.n`); year takes "
        "(date|timestamp) -> int"
    ]
    assert problems(typed("data.s.startsWith(1)")) == [
        ("XS130", GUARD_LINE, "transitions[0].guard")
    ]


def test_every_domain_function_has_one_signature_row() -> None:
    """The table is where a function's types are declared: every domain function has a row,
    and workdays_before (timestamp|date, duration) -> date is there."""
    assert set(DOMAIN_FUNCTIONS) | {LOOKUP} <= set(SIGNATURES)
    (sig,) = signatures("workdays_before") or ()
    assert sig.text == "timestamp|date, duration -> date"
    assert str(sig.result) == "a date (text 'YYYY-MM-DD')"


# -- unknown types are never a mistake ---------------------------------------------------------


@pytest.mark.parametrize(
    "guard",
    [
        "data.obj.k + 1 > data.obj.j",
        "data.rows.exists(r, r.due > date(now) && r.count + 1 == r.total)",
        "size(data.rows.filter(r, r.owner == payload.unit)) < params.limit",
        "has(data.obj.k) ? data.obj.k == 'x' : data.obj.k > 1",
        "dyn(data.n) == 'text'",
        "payload.on <= date(now) && payload.on >= data.d && data.s != null",
        "double(data.n) * data.share > 0.5 && data.share < 1",
        "now < timestamp(data.ts) + duration('24h') && date(now) <= due_date(data.d, "
        "params.window)",
        "'system' in actor.roles || instance.state == 'open' && instance.parent_id == null",
    ],
)
def test_what_cannot_be_known_or_is_well_typed_is_never_reported(guard: str) -> None:
    assert problems(typed(guard)) == []


def test_lookup_and_children_give_records_whose_data_is_unknown() -> None:
    text = typed(
        "lookup(payload.unit) != null && lookup(payload.unit).data.year == data.n "
        "&& date(lookup(payload.unit).created_at) >= data.d "
        "&& children.all(c, c.final && c.data.round == data.n)"
    )
    assert problems(text) == []
    bad = typed("lookup(payload.unit).created_at < data.d")
    assert problems(bad) == [("XS128", GUARD_LINE, "transitions[0].guard")]


def test_every_bundled_workflow_loads_with_no_type_problem() -> None:
    """Every bundled workflow, loaded together, has no problem at all; changing one guard of
    one of them to compare a timestamp with a date is found, on that guard's line."""
    texts = [(str(f), f.read_text("utf-8")) for f in bundled_files()]
    assert len(Registry.from_texts(texts)) == len(texts)
    name, proposal = next((n, t) for n, t in texts if n.endswith("/proposal_handling.yaml"))
    guard = "guard: date(now) <= due_date(instance.created_at, params.return_window)"
    assert guard in proposal
    changed = proposal.replace(
        guard, "guard: now <= due_date(instance.created_at, params.return_window)"
    )
    line = proposal[: proposal.index(guard)].count("\n") + 1
    with pytest.raises(DefinitionError) as info:
        Registry.from_texts([*(t for t in texts if t[0] != name), (name, changed)])
    assert [(p.code, p.line, p.file) for p in info.value.problems] == [("XS128", line, name)]


# -- spawn data against the child: XS131, XS132, XS127 -----------------------------------------

CHILD = """\
id: child
version: 1
title: {zh: 子流程}
roles:
  office: {zh: 办公室}
data:
  title: {type: string, required: true}
  unit: {type: string, required: true}
  due: {type: date}
  round: {type: int, required: true, default: 0}
states:
  open: {initial: true, label: {zh: 开}}
  done: {final: true, label: {zh: 完}}
transitions:
  - trigger: finish
    from: open
    to: done
    roles: [office]
"""
PARENT = """\
id: parent
version: 1
title: {zh: 父流程}
roles:
  office: {zh: 办公室}
data:
  title: {type: string, required: true}
  units: {type: list, items: string}
  rows: {type: list, items: object}
states:
  open: {initial: true, label: {zh: 开}}
  done: {final: true, label: {zh: 完}}
transitions:
  - trigger: dispatch
    from: open
    to: done
    roles: [office]
    spawn:
      workflow: child
      for_each: FOR_EACH
      data:
DATA
"""


def line_of(text: str, start: str, nth: int = 1) -> int:
    """The line of the nth line of ``text`` that starts (after its indent) with ``start``."""
    found = [i for i, line in enumerate(text.splitlines(), 1) if line.strip().startswith(start)]
    return found[nth - 1]


def parent(data: dict[str, str], for_each: str = "data.units") -> str:
    lines = "\n".join(f"        {k}: {json.dumps(v)}" for k, v in data.items())
    return PARENT.replace("FOR_EACH", for_each).replace("DATA", lines)


def test_spawn_data_that_fits_the_child_passes() -> None:
    assert problems(CHILD, parent({"title": "data.title", "unit": "item"})) == []
    rows = parent({"title": "item.title", "unit": "item.unit", "due": "item.due"}, "data.rows")
    assert problems(CHILD, rows) == []


def test_spawn_data_missing_a_required_field_of_the_child_is_refused() -> None:
    """A required field with no default must be given; `round` has a default."""
    with pytest.raises(DefinitionError) as info:
        Registry.from_texts([("c.yaml", CHILD), ("p.yaml", parent({"title": "data.title"}))])
    (p,) = info.value.problems
    assert (p.code, p.line, p.path) == (
        "XS131",
        line_of(PARENT, "data:", 2),
        "transitions[0].spawn.data",
    )
    assert p.message == (
        "spawn data leaves out 'unit', required by workflow 'child'; add `unit: <expression>` "
        "under spawn.data"
    )


def test_spawn_data_naming_a_field_the_child_lacks_suggests_the_close_one() -> None:
    with pytest.raises(DefinitionError) as info:
        Registry.from_texts(
            [
                ("c.yaml", CHILD),
                ("p.yaml", parent({"title": "data.title", "unit": "item", "tilte": "data.title"})),
            ]
        )
    (p,) = info.value.problems
    assert (p.code, p.line, p.path) == (
        "XS132",
        line_of(PARENT, "DATA") + 2,
        "transitions[0].spawn.data.tilte",
    )
    assert p.message == (
        "spawn data names field 'tilte', which workflow 'child' does not declare (did you mean "
        "'title'?); its fields: title, unit, due, round"
    )


def test_spawn_data_of_the_wrong_type_for_the_child_field_is_refused() -> None:
    """`item` is an element of the spawn list (text here); the child's `round` is an int."""
    found = problems(CHILD, parent({"title": "data.title", "unit": "item", "round": "item"}))
    assert found == [("XS127", line_of(PARENT, "DATA") + 2, "transitions[0].spawn.data.round")]
    not_a_list = problems(CHILD, parent({"title": "data.title", "unit": "item"}, "data.title"))
    assert not_a_list == [("XS127", line_of(PARENT, "for_each:"), "transitions[0].spawn.for_each")]


def test_an_update_of_another_workflow_is_checked_against_that_workflows_fields() -> None:
    """`update:` sets fields of another instance: each value must fit that workflow's field."""
    update = (
        PARENT.replace(
            "    spawn:\n      workflow: child\n      for_each: FOR_EACH\n      data:\nDATA\n", ""
        )
        + "    update:\n      workflow: child\n      instance: data.title\n"
        + "      set: {round: SET}\n"
    )
    assert problems(CHILD, update.replace("SET", "size(data.units)")) == []
    assert problems(CHILD, update.replace("SET", "data.title")) == [
        ("XS127", line_of(update, "set:"), "transitions[0].update.set.round")
    ]


# -- validate: every kind at once ------------------------------------------------------------


def test_validate_lists_a_bad_set_a_bad_comparison_and_a_bad_duration_with_their_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command line reports all three, each as file:line: CODE path: message."""
    monkeypatch.chdir(tmp_path)
    text = typed("now < data.d", n="data.s", d="due_date(data.d, 'five working days')")
    (tmp_path / "typed.yaml").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", "typed.yaml"])
    assert result.exit_code == 1
    lines = [line.split(":", 3)[:3] for line in result.stdout.splitlines() if " XS" in line]
    assert sorted((line[1], line[2].split()[0]) for line in lines) == [
        (str(GUARD_LINE), "XS128"),
        (str(SET_LINE), "XS127"),
        (str(SET_LINE), "XS129"),
    ]


# -- the tree -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cel_source", "python"),
    [
        ("a || b && !c", "a or (b and ~c)"),
        ("!a == b", "~a == b"),
        ("c ? x : d ? 1 : 2", "c if x else d if 1 else 2"),
        ("f(c ? a : b, {'k': c ? 1 : 2})", "f(c if a else b, {'k': c if 1 else 2})"),
        ("a < b == c // a comment", "a < b == c"),
        ("data.from + 1", "data._kw_from + 1"),
    ],
)
def test_cel_is_read_at_its_own_precedences(cel_source: str, python: str) -> None:
    """The respelt tree groups as CEL does: ? : lowest, then ||, &&, comparisons, ! highest."""
    parsed = parse(cel_source)
    assert parsed is not None
    assert ast.dump(parsed.tree) == ast.dump(ast.parse(python, mode="eval").body)
    assert parsed.text(parsed.tree) == cel_source.split(" //")[0]


def test_what_cannot_be_respelt_is_left_unchecked() -> None:
    """An unsigned literal has no Python spelling: the expression is not type-checked."""
    assert parse("1u + data.n") is None
    assert problems(typed("1u + 1u > 0u")) == []


# -- properties --------------------------------------------------------------------------------


def _exprs() -> dict[str, st.SearchStrategy[str]]:
    """Random well-typed expressions over TYPED's fields, by the type they give."""
    ints = st.deferred(
        lambda: st.one_of(
            st.sampled_from(
                [
                    "data.n",
                    "params.limit",
                    "size(data.s)",
                    "size(data.xs)",
                    "year(data.d)",
                    "year(now)",
                    "workdays_between(data.d, date(now))",
                ]
            ),
            st.integers(0, 9).map(str),
            st.tuples(ints, st.sampled_from(["+", "-"]), ints).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            st.tuples(bools, ints, ints).map(lambda t: f"({t[0]} ? {t[1]} : {t[2]})"),
        )
    )
    texts = st.deferred(
        lambda: st.one_of(
            st.sampled_from(["data.s", "'议题'", "data.xs[0]", "payload.unit"]),
            ints.map(lambda i: f"string({i})"),
            st.tuples(texts, texts).map(lambda t: f"({t[0]} + {t[1]})"),
        )
    )
    # one step from a known date, so that the sample runs inside the official calendar
    base = st.sampled_from(["data.d", "date(now)", "'2024-10-10'", "date(data.ts)"])
    dates = st.one_of(
        base,
        base.map(lambda d: f"due_date({d}, params.window)"),
        base.map(lambda d: f"due_date({d}, '10 days')"),
        st.tuples(base, st.integers(0, 9)).map(lambda t: f"add_workdays({t[0]}, {t[1]})"),
    )
    moments = st.sampled_from(["now", "instance.created_at", "timestamp(data.ts)"])
    bools = st.deferred(
        lambda: st.one_of(
            st.sampled_from(["data.flag", "true", "data.mode == 'split'", "has(data.obj.k)"]),
            st.tuples(ints, st.sampled_from(["<", "<=", "==", "!=", ">"]), ints).map(" ".join),
            st.tuples(texts, st.sampled_from(["==", "<"]), texts).map(" ".join),
            st.tuples(dates, st.sampled_from(["<=", "==", ">"]), dates).map(" ".join),
            st.tuples(moments, moments).map(lambda t: f"{t[0]} >= {t[1]}"),
            texts.map(lambda t: f"{t} in data.xs"),
            st.tuples(bools, st.sampled_from(["&&", "||"]), bools).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            bools.map(lambda b: f"!({b})"),
            texts.map(lambda t: f"data.xs.exists(x, x == {t})"),
        )
    )
    bad = st.sampled_from(["-five days", "5 weekdays", "three months", "P5D"])
    return {"int": ints, "text": texts, "date": dates, "bool": bools, "bad_duration": bad}


EXPRS = _exprs()
SAMPLE = {
    "data": {
        "n": 3,
        "s": "议题",
        "d": "2024-10-10",
        "ts": "2024-10-10T08:00:00+08:00",
        "flag": True,
        "share": 0.5,
        "mode": "sole",
        "xs": ["a"],
        "obj": {"k": 1},
        "rows": [],
    },
    "payload": {"unit": "u1", "on": "2024-10-09"},
    "params": {"window": "5 working days", "limit": 3},
    "instance": {"created_at": datetime(2024, 10, 1, tzinfo=UTC), "state": "open"},
    "now": datetime(2024, 10, 12, 1, tzinfo=UTC),
    "actor": {"roles": []},
}


def _runs(source: str) -> Any:
    names = list(SAMPLE)
    members: dict[str, Any] = {k: None for k in names}
    program = compile_expression(source, names=names, members=members)
    return program.run(cel.Context(SAMPLE, date_functions("cn_official")))


@settings(max_examples=60, deadline=None)
@given(guard=EXPRS["bool"], n=EXPRS["int"], s=EXPRS["text"], d=EXPRS["date"])
def test_random_well_typed_expressions_are_never_reported(
    guard: str, n: str, s: str, d: str
) -> None:
    """No problem for expressions whose types meet; each also runs on sample data, so the
    generator's idea of well typed is the runtime's."""
    assert problems(typed(guard, n=n, s=s, d=d)) == []
    assert isinstance(_runs(guard), bool)
    assert isinstance(_runs(n), int) and isinstance(_runs(s), str)
    assert isinstance(_runs(d), str)


MUTATIONS = [
    # (how the guard or an effect is broken, the code, the path)
    (lambda e: {"guard": f"({e['bool']}) && {e['int']} == {e['text']}"}, "XS128", "guard"),
    (lambda e: {"guard": f"({e['bool']}) || now < {e['date']}"}, "XS128", "guard"),
    (lambda e: {"n": e["text"]}, "XS127", "set.n"),
    (lambda e: {"d": f"year({e['int']})"}, "XS130", "set.d"),
    (lambda e: {"d": f"due_date({e['date']}, '{e['bad_duration']}')"}, "XS129", "set.d"),
]


@settings(max_examples=60, deadline=None)
@given(
    parts=st.fixed_dictionaries(EXPRS),
    mutation=st.sampled_from(range(len(MUTATIONS))),
)
def test_an_ill_typed_mutation_of_a_well_typed_definition_is_reported(
    parts: dict[str, str], mutation: int
) -> None:
    """Breaking one expression of a well-typed definition gives that mistake's code, once,
    on that expression's line."""
    make, code, path = MUTATIONS[mutation]
    fields = {"guard": parts["bool"], "n": parts["int"], "s": parts["text"], "d": parts["date"]}
    fields.update(make(parts))
    guard = fields.pop("guard")
    line = GUARD_LINE if path == "guard" else SET_LINE
    assert problems(typed(guard, **fields)) == [(code, line, f"transitions[0].{path}")]
