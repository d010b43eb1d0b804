"""Drawing a workflow: Mermaid and Graphviz DOT text, with the Chinese labels.

Both drawings are pure text, deterministic (states in file order, transitions in file order),
and show what people read: a state's ``zh`` label and its deadline, a transition's ``zh`` label
(or, when it has none, the label of another transition with the same trigger, else the trigger
itself) and the roles that may fire it, then a line each for its guard (abbreviated), the timer
that fires it, the child workflow it starts and the trigger it cascades to its children. The
DOT text gives the full guard or deadline as a tooltip, and draws each child workflow as a node;
:func:`svg_titles` makes the tooltips ``<title>`` elements of the SVG graphviz renders.
Rendering DOT to SVG needs the Graphviz binary and belongs to the CLI.
"""

from __future__ import annotations

import json
import re

from .calendar import parse_duration
from .definition import Definition, StateSpec, TransitionSpec
from .errors import CalendarError
from .schema_format import SCHEMA_DIALECT, schema_json

__all__ = [
    "CJK_FONTS",
    "SCHEMA_DIALECT",
    "abbreviate",
    "schema_json",
    "svg_titles",
    "to_dot",
    "to_mermaid",
]

# the first that is installed draws the labels (graphviz asks fontconfig), and an SVG viewer
# picks the first it has: Debian (fonts-noto-cjk, fonts-wqy-microhei), Windows, macOS, any
CJK_FONTS = (
    "Noto Sans CJK SC,Source Han Sans SC,WenQuanYi Micro Hei,Microsoft YaHei,PingFang SC,sans-serif"
)
_SYSTEM_LABEL = "系统"
# One pass, so the ';' of an entity code is not itself replaced.
_MERMAID_ENTITIES = str.maketrans(
    {
        "#": "#35;",
        '"': "#quot;",
        ";": "#59;",
        "<": "#lt;",
        ">": "#gt;",
        "%": "#37;",
        "{": "#123;",
        "}": "#125;",
    }
)

# Words of Mermaid's state-diagram grammar; a state with one of these names needs another id.
_MERMAID_KEYWORDS = frozenset(
    {
        "as",
        "class",
        "classdef",
        "default",
        "direction",
        "end",
        "hide",
        "left",
        "note",
        "of",
        "right",
        "scale",
        "state",
        "style",
        "click",
    }
)


def _transition_text(definition: Definition, t: TransitionSpec) -> str:
    label = t.label or next(
        (o.label for o in definition.transitions if o.trigger == t.trigger and o.label), None
    )
    name = label.zh if label else t.trigger
    roles = t.roles or (("system",) if t.join is not None else ())
    shown = [
        definition.roles[r].zh if r in definition.roles else _SYSTEM_LABEL if r == "system" else r
        for r in roles
    ]
    return f"{name} [{', '.join(shown)}]" if shown else name


_SHORT = 32  # characters of an expression shown on a drawing; the full text is the tooltip


def abbreviate(source: str, width: int = _SHORT) -> str:
    """An expression on one line, cut to ``width`` characters with an ellipsis."""
    flat = " ".join(source.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _duration_text(definition: Definition, text: str) -> str:
    """A duration in Chinese; a param's value and name (``3个月（params.reply_limit）``)."""
    if text.startswith("params."):
        spec = definition.params.get(text.removeprefix("params."))
        return f"{_duration_text(definition, str(spec.default))}（{text}）" if spec else text
    try:
        return parse_duration(text).zh
    except CalendarError:
        return text


def _state_notes(definition: Definition, spec: StateSpec) -> tuple[list[str], str | None]:
    """The lines under a state's label (its deadline), and the tooltip's full text."""
    d = spec.deadline
    if d is None:
        return [], None
    if d.after is not None:
        line, full = f"期限：{_duration_text(definition, d.after)}", None
    else:
        line, full = f"期限：{abbreviate(str(d.at))}", f"deadline at: {d.at}"
    if d.roll == "next_workday":
        line += "（遇休顺延）"
    if d.remind_before is not None:
        line += f"，提前{_duration_text(definition, d.remind_before)}提醒"
    return [line], full


def _step_notes(definition: Definition, t: TransitionSpec, source: str) -> list[str]:
    """The lines under a step's label: its guard, its timer, its spawn and its cascade."""
    notes = [f"条件：{abbreviate(t.guard)}"] if t.guard else []
    notes += [
        f"⏱ {_duration_text(definition, timer.after)}后"
        for timer in definition.timers
        if timer.in_ == source and timer.fire == t.trigger
    ]
    if t.spawn is not None:
        notes.append(f"⇒ 启动子流程 {t.spawn.workflow}")
    notes += [
        f"↯ 子实例：{c.trigger}" + (f"（{c.workflow}）" if c.workflow else "") for c in t.cascade
    ]
    return notes


def _step_tooltip(t: TransitionSpec) -> str | None:
    return f"{t.trigger}: guard {t.guard}" if t.guard else None


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


# -- Mermaid -----------------------------------------------------------------------------------


def _mermaid_text(text: str) -> str:
    """Text safe inside a Mermaid label: entity codes for the characters its grammar reads."""
    return "<br/>".join(_lines(text.translate(_MERMAID_ENTITIES)))


def _mermaid_ids(states: list[str]) -> dict[str, str]:
    ids: dict[str, str] = {}
    taken = set(states)
    for name in states:
        node = name
        if name in _MERMAID_KEYWORDS:
            node = f"{name}_state"
            while node in taken:
                node += "_"
            taken.add(node)
        ids[name] = node
    return ids


def to_mermaid(definition: Definition) -> str:
    """The workflow as a Mermaid ``stateDiagram-v2``.

    Args:
        definition: a definition (checked or not; unknown states in transitions are drawn).

    Returns:
        The diagram text, ending with a newline.
    """
    names = list(definition.states)
    for t in definition.transitions:
        for s in (*t.from_, t.to):
            if s not in definition.states and s not in names:
                names.append(s)
    ids = _mermaid_ids(names)
    # The front matter is YAML, where a JSON string is a valid double-quoted scalar.
    title = json.dumps(" ".join(_lines(definition.title.zh)), ensure_ascii=False)
    out = ["---", f"title: {title}", "---", "stateDiagram-v2"]
    for name in names:
        spec = definition.states.get(name)
        lines = [spec.label.zh, *_state_notes(definition, spec)[0]] if spec else [name]
        out.append(f'    state "{_mermaid_text(chr(10).join(lines))}" as {ids[name]}')
    for name, spec in definition.states.items():
        if spec.initial:
            out.append(f"    [*] --> {ids[name]}")
    for t in definition.transitions:
        for source in t.from_:
            lines = [_transition_text(definition, t), *_step_notes(definition, t, source)]
            out.append(f"    {ids[source]} --> {ids[t.to]}: {_mermaid_text(chr(10).join(lines))}")
    for name, spec in definition.states.items():
        if spec.final:
            out.append(f"    {ids[name]} --> [*]")
    return "\n".join(out) + "\n"


# -- Graphviz DOT ------------------------------------------------------------------------------


def _dot_string(text: str) -> str:
    """A DOT double-quoted string; newlines become DOT's centred line breaks."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "\\n".join(_lines(escaped)) + '"'


def to_dot(definition: Definition) -> str:
    """The workflow as a Graphviz ``digraph`` in UTF-8, drawn with a font that has CJK glyphs.

    Args:
        definition: a definition (checked or not).

    Returns:
        The DOT text, ending with a newline; final states are double circles.
    """
    font = _dot_string(CJK_FONTS)
    out = [
        f"digraph {_dot_string(definition.id)} {{",
        f'    graph [charset="UTF-8", rankdir=LR, labelloc=t, fontname={font}, '
        f"label={_dot_string(definition.title.zh)}];",
        f"    node [shape=box, style=rounded, fontname={font}];",
        f"    edge [fontname={font}, fontsize=10];",
        '    "__start" [shape=point, width=0.15, label=""];',
    ]
    for name, spec in definition.states.items():
        notes, full = _state_notes(definition, spec)
        attrs = f"label={_dot_string(chr(10).join([spec.label.zh, *notes]))}"
        if spec.final:
            attrs += ", shape=doublecircle, style=solid"
        if full is not None:
            attrs += f", tooltip={_dot_string(full)}"
        out.append(f"    {_dot_string(name)} [{attrs}];")
    for name, spec in definition.states.items():
        if spec.initial:
            out.append(f'    "__start" -> {_dot_string(name)};')
    loops: dict[str, list[tuple[str, str | None]]] = {}
    children: dict[str, list[str]] = {}
    for t in definition.transitions:
        if t.spawn is not None:
            children.setdefault(t.spawn.workflow, []).append(t.to)
        for source in t.from_:
            text = "\n".join([_transition_text(definition, t), *_step_notes(definition, t, source)])
            if source == t.to:
                loops.setdefault(source, []).append((text, _step_tooltip(t)))
                continue
            out.append(f"    {_dot_string(source)} -> {_dot_string(t.to)} [{_edge(text, t)}];")
    for state, steps in loops.items():
        # one loop per state, its steps listed: several loops on one node overlap unreadably
        label = _dot_string("\n".join(text for text, _ in steps))
        tips = [tip for _, tip in steps if tip]
        tooltip = f", tooltip={_dot_string(chr(10).join(tips))}" if tips else ""
        out.append(f"    {_dot_string(state)} -> {_dot_string(state)} [label={label}{tooltip}];")
    for workflow, states in children.items():
        node, label = _dot_string(f"__workflow_{workflow}"), _dot_string(f"子流程 {workflow}")
        out.append(f"    {node} [shape=component, style=dashed, label={label}];")
        for state in dict.fromkeys(states):
            out.append(f"    {_dot_string(state)} -> {node} [style=dashed, arrowhead=empty];")
    out.append("}")
    return "\n".join(out) + "\n"


def _edge(text: str, t: TransitionSpec) -> str:
    tooltip = _step_tooltip(t)
    return f"label={_dot_string(text)}" + (f", tooltip={_dot_string(tooltip)}" if tooltip else "")


_XLINK_TITLE = re.compile(r'<a xlink:title="([^"]*)">')


def svg_titles(svg: str) -> str:
    """The SVG graphviz drew from :func:`to_dot`, each tooltip also a ``<title>`` element (the
    tooltip browsers show; graphviz writes it only as the link's ``xlink:title``)."""
    return _XLINK_TITLE.sub(lambda m: f"{m.group(0)}<title>{m.group(1)}</title>", svg)
