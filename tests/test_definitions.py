"""Loading workflow definitions: problem codes, lines and paths, safe YAML, the JSON Schema, and
every bundled workflow."""

from __future__ import annotations

import json
import re
import signal
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from xieshang import Definition, DefinitionError, Registry, load_definition
from xieshang import loading as loading_module
from xieshang.diagram import schema_json, to_dot, to_mermaid
from xieshang.workflows import bundled, bundled_files
from xieshang.yamlsafe import MAX_BYTES, MAX_DEPTH, read_yaml

FIXTURES = Path(__file__).parent / "fixtures"
INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))
VALID = sorted((FIXTURES / "valid").glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (XS\d{3}) line (\d+)(?: (?!with )(\S+))?(?: with (\S+))?$")
DOCUMENTED_CODES = re.findall(r"^(XS\d{3}) ", loading_module.__doc__ or "", re.M)
REGENERATE = (
    "python -c 'import json; from xieshang.diagram import schema_json; print(json.dumps("
    "schema_json(), indent=2, sort_keys=True, ensure_ascii=False))' "
    "> engine/schema/workflow.schema.json"
)
MINIMAL = (FIXTURES / "valid" / "minimal.yaml").read_text(encoding="utf-8")


def rel(path: Path) -> str:
    return path.relative_to(FIXTURES).as_posix()


def expectations(path: Path) -> tuple[list[tuple[str, int, str]], str | None]:
    """The ``# expect:`` lines at the top of a fixture, and the file it must be loaded with."""
    found: list[tuple[str, int, str]] = []
    partner = None
    for line in path.read_text(encoding="utf-8").splitlines():
        match = EXPECT.match(line)
        if match is None:
            break
        code, number, where, with_file = match.groups()
        found.append((code, int(number), where or ""))
        partner = with_file or partner
    return found, partner


def problems_of(path: Path) -> list[Any]:
    """Load one fixture (with its partner file, through the registry, if it names one)."""
    _, partner = expectations(path)
    with pytest.raises(DefinitionError) as info:
        if partner is None:
            load_definition(path.read_text(encoding="utf-8"), rel(path))
        else:
            Registry.from_texts(
                [
                    (partner, (FIXTURES / partner).read_text(encoding="utf-8")),
                    (rel(path), path.read_text(encoding="utf-8")),
                ]
            )
    return info.value.problems


def load_error(text: str, file: str = "f.yaml") -> DefinitionError:
    with pytest.raises(DefinitionError) as info:
        load_definition(text, file)
    return info.value


# -- one fixture per problem code ------------------------------------------------------------


def test_every_documented_problem_code_has_a_fixture_named_after_it() -> None:
    """Each code of the loader's table has an invalid fixture whose name starts with that code."""
    named = {p.name[:5] for p in INVALID if re.match(r"XS\d{3}-", p.name)}
    assert len(DOCUMENTED_CODES) == 41
    assert set(DOCUMENTED_CODES) == named


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_fixture_reports_its_code_at_its_line_and_path(path: Path) -> None:
    """An invalid file raises DefinitionError naming each expected code, file, line and path."""
    expected, _ = expectations(path)
    assert expected, f"{path.name} has no '# expect:' line"
    if re.match(r"XS\d{3}-", path.name):
        assert expected[0][0] == path.name[:5]
    problems = problems_of(path)
    found = {(p.code, p.line, p.path) for p in problems}
    for code, line, where in expected:
        assert (code, line, where) in found, f"{code} line {line} {where!r} not in {found}"
    mine = [p for p in problems if p.code == expected[0][0]]
    assert all(p.file == rel(path) for p in mine)
    assert all(re.fullmatch(r"XS\d{3}", p.code) and p.name and p.message for p in problems)


def test_all_problems_of_a_file_are_reported_together() -> None:
    """Loading collects every problem of every stage that could run before it raises."""
    path = FIXTURES / "invalid" / "several-problems.yaml"
    expected, _ = expectations(path)
    problems = problems_of(path)
    assert sorted((p.code, p.line, p.path) for p in problems) == sorted(expected)
    assert len({p.code for p in problems}) == 8


def test_problems_are_listed_in_file_order() -> None:
    """The problems of a DefinitionError come sorted by line, so they read top to bottom."""
    problems = problems_of(FIXTURES / "invalid" / "several-problems.yaml")
    lines = [p.line or 0 for p in problems]
    assert lines == sorted(lines)


def test_unknown_state_message_names_the_path_and_suggests_the_close_name() -> None:
    """A misspelt state's problem names its path and offers the declared name closest to it."""
    problems = problems_of(FIXTURES / "invalid" / "several-problems.yaml")
    unknown = next(p for p in problems if p.code == "XS101")
    assert str(unknown) == (
        "invalid/several-problems.yaml:38: XS101 transitions[3].to: "
        "unknown state 'replyed'; did you mean 'replied'?"
    )
    assert unknown.name == "unknown-state"


def test_a_name_with_no_close_match_gets_no_suggestion() -> None:
    """A suggestion is offered only when a declared name is close to the misspelt one."""
    error = load_error(MINIMAL.replace("to: closed", "to: zzzzzz"))
    (problem,) = error.problems
    assert problem.message == "unknown state 'zzzzzz'"


def test_definition_error_message_lists_every_problem_with_file_and_line() -> None:
    """The error's text counts the problems and shows one line per problem."""
    path = FIXTURES / "invalid" / "several-problems.yaml"
    with pytest.raises(DefinitionError) as info:
        load_definition(path.read_text(encoding="utf-8"), "several.yaml")
    text = str(info.value)
    assert text.startswith("8 problems in workflow definition:\n")
    assert "several.yaml:26: XS110 transitions[0].roles[0]: unknown role 'reviwer'" in text
    assert len(info.value.to_dict()["problems"]) == 8


def test_a_problem_about_a_block_mapping_points_at_its_key() -> None:
    """A problem about `states` as a whole points at the line of `states:`, not the next one."""
    problems = problems_of(FIXTURES / "invalid" / "XS103-initial-state.yaml")
    assert [p.line for p in problems if p.code == "XS103"] == [13]


def test_a_duplicate_id_names_both_files() -> None:
    """Two files with the same workflow id and version: the problem names the other file."""
    problems = problems_of(FIXTURES / "invalid" / "XS117-duplicate-id.yaml")
    (problem,) = problems
    assert problem.file == "invalid/XS117-duplicate-id.yaml"
    assert "valid/minimal.yaml" in problem.message


def test_a_spawn_of_a_workflow_loaded_alongside_is_accepted() -> None:
    """A spawn may name any workflow of the same registry, and only those."""
    registry = Registry.from_texts((rel(p), p.read_text(encoding="utf-8")) for p in VALID)
    assert registry.ids() == ["assignment", "minimal", "switch", "unit_reply"]
    with pytest.raises(DefinitionError) as info:
        Registry.from_texts([("assignment.yaml", (FIXTURES / "valid/assignment.yaml").read_text())])
    assert [p.code for p in info.value.problems] == ["XS118"]


# -- soft rules (warn:) ------------------------------------------------------------------------


def test_every_problem_of_warn_entries_is_listed_with_its_path() -> None:
    """Bad conditions, a name a warning may not read (children), a bad placeholder, a code used
    twice and a bad mode are all reported at once, each at its entry's key."""
    path = FIXTURES / "invalid" / "warn-problems.yaml"
    expected, _ = expectations(path)
    problems = problems_of(path)
    assert sorted((p.code, p.line, p.path) for p in problems) == sorted(expected)
    reads = next(p for p in problems if p.path == "transitions[1].warn[1].when")
    assert reads.message == (
        "unknown name 'children' in 'children.exists(c, !c.final)'; names allowed here: "
        "actor, data, instance, now, params, parent, payload"
    )


def test_a_warn_entry_without_a_message_is_a_schema_problem() -> None:
    """``message`` is required (Chinese at least): its absence is XS010 at the entry."""
    text = MINIMAL.replace(
        "    set: {reply_class: payload.reply_class}\n",
        "    set: {reply_class: payload.reply_class}\n"
        "    warn:\n      - {code: late, when: 'true'}\n",
    )
    (problem,) = load_error(text).problems
    assert (problem.code, problem.path, problem.message) == (
        "XS010",
        "transitions[1].warn[0].message",
        "required key is missing",
    )


WARNED = MINIMAL.replace(
    "params:\n",
    "params:\n  class_c: {type: string, default: warn}\n",
).replace(
    "    set: {reply_class: payload.reply_class}\n",
    "    set: {reply_class: payload.reply_class}\n    warn:\n"
    "      - {code: class_c, when: \"payload.reply_class == 'C'\", mode: params.class_c,\n"
    "         message: {zh: C类答复}}\n",
)


def test_a_deployment_chooses_warn_or_refuse_through_the_param() -> None:
    """The mode param resolves at load time: its default warns, an override may refuse, and an
    override that is neither is XS126 naming the param and its value."""
    [warn] = load_definition(WARNED).transitions[1].warnings
    assert (warn.code, warn.refuse, warn.message.zh) == ("class_c", False, "C类答复")
    [strict] = load_definition(WARNED, params={"class_c": "refuse"}).transitions[1].warnings
    assert strict.refuse is True
    with pytest.raises(DefinitionError) as info:
        load_definition(WARNED, "w.yaml", params={"class_c": "strict"})
    assert [(p.code, p.path, p.message) for p in info.value.problems] == [
        (
            "XS126",
            "transitions[1].warn[0].mode",
            "param 'class_c' is the string 'strict'; a mode param is a string, 'warn' or 'refuse'",
        )
    ]


# -- safe YAML -------------------------------------------------------------------------------


def test_yaml_11_booleans_stay_state_names() -> None:
    """States called on, off, yes and no are strings, as keys and as values."""
    wf = load_definition((FIXTURES / "valid/switch.yaml").read_text(encoding="utf-8"))
    assert list(wf.definition.states) == ["off", "on", "yes", "no"]
    assert wf.definition.initial_state == "off"
    assert wf.definition.transitions[2].from_ == ("on", "off")
    assert wf.definition.final_states == {"no"}


def test_only_true_and_false_are_booleans() -> None:
    """`true`/`false` read as booleans; `yes`, `on`, `y` read as text."""
    located, problems = read_yaml("a: true\nb: False\nc: yes\nd: on\ne: y\nf: NO\n")
    assert problems == []
    assert located is not None
    assert located.data == {"a": True, "b": False, "c": "yes", "d": "on", "e": "y", "f": "NO"}


def test_a_duplicate_key_is_a_problem_not_an_overwrite() -> None:
    """The same key twice is reported at the second one's line; the first value is kept."""
    located, problems = read_yaml("a: 1\nb:\n  c: 2\n  c: 3\n")
    assert [(p.code, p.line, p.path) for p in problems] == [("XS003", 4, "b.c")]
    assert located is not None and located.data == {"a": 1, "b": {"c": 2}}


def test_a_file_over_the_size_limit_is_refused_before_parsing() -> None:
    """The limit is in bytes (UTF-8), checked before any YAML is read."""
    text = "# " + "中" * (MAX_BYTES // 3)
    assert len(text) < MAX_BYTES < len(text.encode())
    started = time.perf_counter()
    error = load_error(text)
    assert time.perf_counter() - started < 0.5
    assert [(p.code, p.name, p.line) for p in error.problems] == [("XS002", "too-large", 1)]
    assert str(MAX_BYTES) in error.problems[0].message


def _nested_default(depth: int) -> str:
    value = "1"
    for _ in range(depth):
        value = "{a: " + value + "}"
    return MINIMAL.replace(
        "  reply_class: {type: enum, values: [A, B, C]}",
        "  reply_class: {type: enum, values: [A, B, C]}\n"
        f"  extra: {{type: object, default: {value}}}",
    )


def test_nesting_up_to_the_limit_loads() -> None:
    """A value nested exactly MAX_DEPTH levels deep is accepted."""
    wf = load_definition(_nested_default(MAX_DEPTH - 3))
    assert wf.definition.data["extra"].default is not None


def test_nesting_beyond_the_limit_is_refused() -> None:
    """One level deeper than MAX_DEPTH is an XS002 problem at that path."""
    error = load_error(_nested_default(MAX_DEPTH - 2))
    (problem,) = [p for p in error.problems if p.code == "XS002"]
    assert problem.name == "too-deep"
    assert problem.path == "data.extra.default" + ".a" * (MAX_DEPTH - 2)


def test_thousands_of_nesting_levels_are_a_problem_not_a_crash() -> None:
    """Nesting far beyond the limit still ends in DefinitionError XS002."""
    error = load_error("id: x\ndescription: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "XS002" in {p.code for p in error.problems}


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Interrupt the block with TimeoutError after ``seconds`` (POSIX main thread)."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


BILLION_LAUGHS = "\n".join(
    ['a0: &a0 ["lol"]']
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    + ["id: bomb"]
)


def test_an_alias_bomb_is_refused_quickly() -> None:
    """Nine levels of nine aliases (10^9 values once expanded) are refused by the alias limit,
    never expanded (the watchdog only stops a run that would expand them for hours)."""
    with deadline(60):
        error = load_error(BILLION_LAUGHS)
    assert "XS002" in {p.code for p in error.problems}


YAML_ERRORS_THAT_ESCAPE = {
    "python-tag": "version: !!python/object/apply:os.getcwd []",
    "unknown-tag": "version: !custom 1",
    "bad-int": "version: !!int one",
    "bad-timestamp": "version: !!timestamp soon",
    "merge-of-a-scalar": "x: &x 5\ny:\n  <<: *x",
    "huge-int": "version: " + "9" * 5000,
    "nul-character": "id: a\x00b",
}


@pytest.mark.parametrize("key", sorted(YAML_ERRORS_THAT_ESCAPE))
def test_a_value_yaml_cannot_construct_is_a_syntax_problem(key: str) -> None:
    """Unknown tags, unparseable tagged scalars and bad merges end in XS001, never another error."""
    text = MINIMAL.replace("version: 1", YAML_ERRORS_THAT_ESCAPE[key])
    error = load_error(text)
    assert "XS001" in {p.code for p in error.problems}


def test_a_python_object_tag_is_never_constructed(tmp_path: Path) -> None:
    """The loader is safe: a python/object tag does not run code, whatever else happens."""
    marker = tmp_path / "ran"
    text = MINIMAL.replace(
        "version: 1", f"version: !!python/object/apply:pathlib.Path.touch [{str(marker)!r}]"
    )
    error = load_error(text)
    (syntax,) = [p for p in error.problems if p.code == "XS001"]
    assert "python/object/apply" in syntax.message
    assert not marker.exists()


def test_a_date_like_default_of_a_string_field_stays_text() -> None:
    """Dates are ISO strings in xieshang, so an unquoted 2024-10-01 is the text '2024-10-01'."""
    text = MINIMAL.replace(
        "  reply_class: {type: enum, values: [A, B, C]}",
        "  reply_class: {type: enum, values: [A, B, C]}\n"
        "  term: {type: string, default: 2024-10-01}",
    )
    assert load_definition(text).definition.data["term"].default == "2024-10-01"


# -- the JSON Schema -------------------------------------------------------------------------


def shipped_schema() -> dict[str, Any]:
    text = resources.files("xieshang").joinpath("schema/workflow.schema.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def schema_problems(schema: dict[str, Any], data: Any) -> list[str]:
    """Validation errors of ``data``: jsonschema_rs when installed, else a pydantic round trip
    plus a check that every top-level key is one the schema declares."""
    try:
        import jsonschema_rs
    except ImportError:
        errors = [f"unknown key {k}" for k in data if k not in schema["properties"]]
        errors += [f"missing {k}" for k in schema["required"] if k not in data]
        try:
            Definition.model_validate(data)
        except DefinitionError as e:
            errors += [f"{p.path}: {p.message}" for p in e.problems]
        return errors
    validator = jsonschema_rs.validator_for(schema)
    return [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(data)]


def test_shipped_schema_is_the_generated_one() -> None:
    """workflow.schema.json is schema_json() written out; regenerate it when the models change."""
    text = resources.files("xieshang").joinpath("schema/workflow.schema.json").read_text("utf-8")
    expected = json.dumps(schema_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert text == expected, f"stale; regenerate it with: {REGENERATE}"


def test_schema_names_its_dialect_and_uses_the_yaml_spellings() -> None:
    """The schema declares its dialect and title and spells keys as the YAML does (from, in)."""
    schema = shipped_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "xieshang workflow definition"
    assert "from" in schema["$defs"]["TransitionSpec"]["properties"]
    assert "in" in schema["$defs"]["TimerSpec"]["properties"]
    assert set(schema["required"]) == {"id", "version", "title", "states"}


@pytest.mark.parametrize(
    "path", [*bundled_files(), *VALID], ids=[p.name for p in [*bundled_files(), *VALID]]
)
def test_every_valid_workflow_file_validates_against_the_schema(path: Path) -> None:
    """What the loader accepts, the schema accepts (shorthand labels and one `from` included)."""
    located, problems = read_yaml(path.read_text(encoding="utf-8"))
    assert problems == [] and located is not None
    assert schema_problems(shipped_schema(), located.data) == []


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (("to: handling", "to: [handling]"), "to"),
        (("    roles: [reviewer]\n", "    roles: [reviewer]\n    colour: red\n"), "colour"),
        (("version: 1", "version: 0"), "version"),
        (("submitted: {initial: true,", "submitted: {initial: maybe,"), "initial"),
    ],
)
def test_schema_rejects_what_the_model_rejects(change: tuple[str, str], where: str) -> None:
    """The schema is not vacuous: a wrong type, an unknown key or a bad number fails it."""
    located, _ = read_yaml(MINIMAL.replace(*change, 1))
    assert located is not None
    errors = schema_problems(shipped_schema(), located.data)
    assert errors
    assert any(where in e for e in errors)


# -- the bundled workflows -------------------------------------------------------------------


@pytest.mark.parametrize("path", bundled_files(), ids=[p.name for p in bundled_files()])
def test_every_bundled_workflow_loads_compiles_and_draws(path: Path) -> None:
    """Each shipped file loads, compiles to a machine and draws in both formats."""
    wf = load_definition(path.read_text(encoding="utf-8"), path.name)
    assert len(wf.transitions) == len(wf.definition.transitions)
    mermaid, dot = to_mermaid(wf.definition), to_dot(wf.definition)
    for state in wf.definition.states.values():
        assert state.label.zh in mermaid and state.label.zh in dot


def test_bundled_workflows_load_together_as_one_registry() -> None:
    """The bundled files form one registry, so spawns between them resolve."""
    registry = bundled()
    assert registry.ids() == sorted(p.stem for p in bundled_files())
    assert "proposal" in registry.ids()


def test_load_and_compile_of_the_proposal_workflow_is_reported() -> None:
    """Load + compile is deterministic; its median of 20 runs is printed (run with -s)."""
    text = (bundled_files()[0].parent / "proposal.yaml").read_text(encoding="utf-8")
    hashes, times = set(), []
    for _ in range(20):
        started = time.perf_counter()
        hashes.add(load_definition(text, "proposal.yaml").hash)
        times.append(time.perf_counter() - started)
    print(f"\nproposal.yaml load + compile: median {statistics.median(times) * 1000:.1f} ms of 20")
    assert len(hashes) == 1
