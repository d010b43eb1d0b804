"""Properties of loading: a broken definition always ends in DefinitionError with located
problems, and a definition survives definition -> JSON -> YAML -> definition unchanged."""

from __future__ import annotations

import contextlib
import copy
import re
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xieshang import Definition, DefinitionError, load_definition
from xieshang.diagram import to_dot, to_mermaid
from xieshang.workflows import bundled_files

Json = dict[str, Any]
Node = tuple[str | int, ...]
MINIMAL = Path(__file__).parent / "fixtures" / "valid" / "minimal.yaml"
BASES: dict[str, Json] = {
    p.name: load_definition(p.read_text(encoding="utf-8"), p.name).definition.to_json()
    for p in [*bundled_files(), MINIMAL]
}
SLOW = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])

idents = st.builds(
    str.__add__,
    st.sampled_from(string.ascii_lowercase),
    st.text(alphabet=string.ascii_lowercase + string.digits + "_", max_size=11),
)
# PyYAML's emitter writes NEL (U+0085) unescaped and its reader then takes it for a line break.
characters = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x85")
labels = st.text(characters, min_size=1, max_size=30)


def dump(data: Json) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


# -- walking the plain data ----------------------------------------------------------------


def walk(node: Any, path: Node = ()) -> Iterator[tuple[Node, Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, (*path, i))


def at(data: Any, path: Node) -> Any:
    for part in path:
        data = data[part]
    return data


NAME_KEYED = {"roles", "states", "data", "params", "payload", "set"}
LABELS = {"title", "label", "guard_message"}


def is_model(path: Node) -> bool:
    """Whether the mapping at ``path`` is a model object (fixed keys), not a name -> value map."""
    if not path:
        return True
    if path[-1] in NAME_KEYED or path[-1] == "default" or "default" in path:
        return False
    return not (len(path) >= 2 and path[-1] == "data" and path[-2] == "spawn")


def required_at(path: Node) -> set[str]:
    """The keys the model requires in the mapping at ``path``."""
    if not path:
        return {"id", "version", "title", "states"}
    head, size = path[0], len(path)
    if size == 2 and head == "states":
        return {"label"}
    if size == 2 and head == "transitions":
        return {"trigger", "from", "to"}
    if size == 2 and head == "timers":
        return {"in", "after", "fire"}
    if size == 2 and head == "data":
        return {"type"}
    if size == 2 and head == "params":
        return {"type", "default"}
    if size == 2 and head == "roles":
        return {"zh"}
    if size == 4 and head == "transitions" and path[2] == "payload":
        return {"type"}
    if path[-1] == "spawn" and is_model(path[:-1]):
        return {"workflow", "for_each"}
    if path[-1] == "deadline":
        return {"after", "at"}
    if path[-1] in LABELS and is_model(path[:-1]):
        return {"zh"}
    return set()


# -- mutations: each always breaks the definition ------------------------------------------

Mutation = Callable[[Json, st.DataObject], None]


def drop_state(d: Json, data: st.DataObject) -> None:
    """Remove a state that some transition names (every state of a valid workflow is)."""
    del d["states"][data.draw(st.sampled_from(sorted(d["states"])), label="dropped state")]


def retarget(d: Json, data: st.DataObject) -> None:
    """Point a transition at a state that does not exist."""
    t = data.draw(st.sampled_from(d["transitions"]), label="transition")
    t["to"] = data.draw(idents.filter(lambda s: s not in d["states"]), label="new target")


def rename_role(d: Json, data: st.DataObject) -> None:
    """Let a transition name a role the workflow does not declare."""
    t = data.draw(st.sampled_from([t for t in d["transitions"] if t.get("roles")]))
    new = data.draw(idents.filter(lambda s: s not in d.get("roles", {}) and s != "system"))
    t["roles"][data.draw(st.integers(0, len(t["roles"]) - 1))] = new


BREAKERS: list[Callable[[str], str]] = [
    lambda s: s + " &&",
    lambda s: "(" + s,
    lambda s: "no_such_function(" + s + ")",
    lambda s: "no_such_name == 1 || " + s,
    lambda s: "data.zz_not_a_field == 1 || " + s,
]


def break_expression(d: Json, data: st.DataObject) -> None:
    """Make a guard or an effect bad CEL: syntax, unknown function, name or field."""
    places: list[Node] = [
        path
        for path, value in walk(d)
        if isinstance(value, str)
        and len(path) >= 3
        and path[0] == "transitions"
        and (path[2] == "guard" or (path[2] == "set" and len(path) == 4))
    ]
    path = data.draw(st.sampled_from(places), label="expression")
    breaker = data.draw(st.sampled_from(BREAKERS), label="breaker")
    at(d, path[:-1])[path[-1]] = breaker(at(d, path))


NOT_BOOL: list[str] = ["not", "a", "bool"]
NOT_NUMBER = "many"
NOT_TEXT: Json = {"not": "text"}
NOT_CONTAINER = -987654
WRONG = [NOT_BOOL, NOT_NUMBER, NOT_TEXT, NOT_CONTAINER]


def wrong_type(d: Json, data: st.DataObject) -> None:
    """Replace a value with one of a type its place never accepts (never undoing a replacement)."""
    paths = [
        p for p, _ in walk(d) if p and not any(at(d, p[:i]) in WRONG for i in range(1, len(p) + 1))
    ]
    path = data.draw(st.sampled_from(paths), label="path")
    value = at(d, path)
    if isinstance(value, bool):
        new: Any = list(NOT_BOOL)
    elif isinstance(value, int | float):
        new = NOT_NUMBER
    elif isinstance(value, str):
        new = dict(NOT_TEXT)
    else:
        new = NOT_CONTAINER
    at(d, path[:-1])[path[-1]] = new


def delete_required(d: Json, data: st.DataObject) -> None:
    """Delete a key the model requires."""
    places = [
        (path, key)
        for path, value in walk(d)
        if isinstance(value, dict)
        for key in sorted(required_at(path) & set(value))
    ]
    path, key = data.draw(st.sampled_from(places), label="required key")
    del at(d, path)[key]


def add_unknown_key(d: Json, data: st.DataObject) -> None:
    """Add a key no model declares to a model mapping."""
    paths = [p for p, v in walk(d) if isinstance(v, dict) and is_model(p)]
    path = data.draw(st.sampled_from(paths), label="mapping")
    at(d, path)["x_" + data.draw(idents, label="key")] = data.draw(st.integers() | st.text())


def duplicate_transition(d: Json, data: st.DataObject) -> None:
    """Repeat a transition: same trigger, sources, target and guard."""
    i = data.draw(st.integers(0, len(d["transitions"]) - 1), label="copied")
    d["transitions"].append(copy.deepcopy(d["transitions"][i]))


def final_with_exit(d: Json, data: st.DataObject) -> None:
    """Mark final a state that transitions leave."""
    sources = sorted({s for t in d["transitions"] for s in t["from"]})
    d["states"][data.draw(st.sampled_from(sources))]["final"] = True


MUTATIONS: list[Mutation] = [
    drop_state,
    retarget,
    rename_role,
    break_expression,
    wrong_type,
    delete_required,
    add_unknown_key,
    duplicate_transition,
    final_with_exit,
]


@SLOW
@given(
    base=st.sampled_from(sorted(BASES)),
    mutations=st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3),
    data=st.data(),
)
def test_a_broken_definition_always_ends_in_located_problems(
    base: str, mutations: list[Mutation], data: st.DataObject
) -> None:
    """Whatever breaks a valid definition, loading raises DefinitionError and nothing else,
    with at least one problem, each with a stable code, a path, the file and a line."""
    d = copy.deepcopy(BASES[base])
    mutations[0](d, data)
    for mutation in mutations[1:]:
        # An earlier mutation may have removed what this one works on.
        with contextlib.suppress(KeyError, TypeError, IndexError, AttributeError):
            mutation(d, data)
    text = dump(d)
    with pytest.raises(DefinitionError) as info:
        load_definition(text, "mutant.yaml")
    problems = info.value.problems
    assert problems
    for p in problems:
        assert re.fullmatch(r"XS\d{3}", p.code), p
        assert p.path, p
        assert p.file == "mutant.yaml"
        assert p.line is not None and 1 <= p.line <= text.count("\n") + 1, p


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.__name__ for m in MUTATIONS])
def test_each_mutation_alone_breaks_the_proposal(mutation: Mutation) -> None:
    """Every mutation kind, applied once to the proposal, is refused (the property's premise)."""

    @settings(deadline=None, max_examples=3)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        d = copy.deepcopy(BASES["proposal.yaml"])
        mutation(d, data)
        with pytest.raises(DefinitionError):
            load_definition(dump(d), "mutant.yaml")

    check()


# -- round trip ----------------------------------------------------------------------------


def assert_round_trip(definition: Definition) -> None:
    text = dump(definition.to_json())
    again = load_definition(text, "again.yaml").definition
    assert again.to_json() == definition.to_json()
    assert again == definition
    assert again.content_hash == definition.content_hash
    assert to_mermaid(again) == to_mermaid(definition)
    assert to_dot(again) == to_dot(definition)


@pytest.mark.parametrize("path", bundled_files(), ids=[p.name for p in bundled_files()])
def test_a_bundled_workflow_survives_json_and_yaml_unchanged(path: Path) -> None:
    """definition -> to_json -> YAML -> load gives an equal definition with the same hash."""
    assert_round_trip(load_definition(path.read_text(encoding="utf-8")).definition)


# `data.in` does not parse (nor .true, .false, .null): such a field is read only as data['in'].
CEL_RESERVED = frozenset({"in", "true", "false", "null"})
FIELDS = {
    "string": st.text(characters, max_size=20),
    "int": st.integers(-1000, 1000),
    "bool": st.booleans(),
    "date": st.dates().map(lambda d: d.isoformat()),
}


@st.composite
def definitions(draw: st.DrawFn) -> Definition:
    """A valid definition: a chain of states from the initial one to a final one, finals reached
    from the chain, and extra transitions between chain states (so every state is reachable and
    can reach a final state)."""
    n = draw(st.integers(1, 6), label="chain length")
    extra_finals = draw(st.integers(0, 2))
    names = draw(
        st.lists(idents, min_size=n + 1 + extra_finals, max_size=n + 1 + extra_finals, unique=True)
    )
    chain, finals = names[:n], names[n:]
    roles = draw(st.lists(idents, min_size=1, max_size=3, unique=True), label="roles")
    fields: Json = {}
    names_ok = idents.filter(lambda s: s not in CEL_RESERVED)
    for name in draw(st.lists(names_ok, max_size=4, unique=True), label="fields"):
        kind = draw(st.sampled_from(sorted(FIELDS)))
        spec: Json = {"type": kind}
        if draw(st.booleans()):
            spec["default"] = draw(FIELDS[kind])
        if draw(st.booleans()):
            spec["label"] = {"zh": draw(labels)}
        fields[name] = spec
    states: Json = {}
    for i, name in enumerate(names):
        state: Json = {"label": {"zh": draw(labels)}}
        if draw(st.booleans()):
            state["label"]["en"] = draw(labels)
        if i == 0:
            state["initial"] = True
        if name in finals:
            state["final"] = True
        states[name] = state
    edges = [(chain[i], chain[i + 1]) for i in range(n - 1)] + [(chain[-1], finals[0])]
    edges += [(draw(st.sampled_from(chain)), f) for f in finals[1:]]
    edges += draw(st.lists(st.tuples(st.sampled_from(chain), st.sampled_from(names)), max_size=6))
    triggers = draw(st.lists(idents, min_size=1, max_size=4, unique=True), label="triggers")
    transitions, seen = [], set()
    guards = ["true", *(f"data.{f} != null" for f in fields)]
    for source, target in edges:
        trigger = draw(st.sampled_from(triggers))
        guard = draw(st.none() | st.sampled_from(guards))
        if (trigger, source, target, guard) in seen:
            continue
        seen.add((trigger, source, target, guard))
        t: Json = {
            "trigger": trigger,
            "from": [source],
            "to": target,
            "roles": draw(st.lists(st.sampled_from(roles), min_size=1, unique=True)),
        }
        if guard is not None:
            t["guard"] = guard
        if fields and draw(st.booleans()):
            field = draw(st.sampled_from(sorted(fields)))
            t["set"] = {field: f"data.{field}"}
        if draw(st.booleans()):
            t["label"] = {"zh": draw(labels)}
        if draw(st.booleans()):
            t["reason_required"] = True
        transitions.append(t)
    return Definition.model_validate(
        {
            "id": draw(idents),
            "version": draw(st.integers(1, 50)),
            "title": {"zh": draw(labels)},
            "calendar": draw(st.sampled_from(["cn_official", "weekdays"])),
            "roles": {r: {"zh": draw(labels)} for r in roles},
            "data": fields,
            "states": states,
            "transitions": transitions,
        }
    )


@SLOW
@given(definitions())
def test_a_random_valid_definition_survives_json_and_yaml_unchanged(definition: Definition) -> None:
    """Any valid definition, any labels (quotes, line breaks, any script), round-trips exactly."""
    assert_round_trip(definition)
