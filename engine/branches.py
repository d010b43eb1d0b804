"""``branches:``: one trigger with several guarded targets, the first whose guard holds taken,
expanded into one transition per branch in their order (the runtime already takes the first
candidate transition that passes its checks). When every branch is guarded, each gets the
refusal that names every branch's message, so that a refusal when none holds names them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .yamlsafe import Path

if TYPE_CHECKING:
    from .factoring import _Expander

__all__ = ["expand_branches"]

_BRANCH_BASE = ("to", "guard", "guard_message")
_NOT_IN_BRANCH = ("trigger", "from", "branches")


def expand_branches(ex: _Expander) -> None:
    """Each transition with ``branches`` becomes one transition per branch, in order."""
    steps = ex.data.get("transitions")
    if not isinstance(steps, list):
        return
    out: list[Any] = []
    for i, step in enumerate(steps):
        if not (isinstance(step, dict) and "branches" in step):
            if len(out) != i:
                ex.moves[("transitions", len(out))] = ("transitions", i)
            out.append(step)
            continue
        out.extend(_branch(ex, i, step, len(out)))
    ex.data["transitions"] = out


def _branch(ex: _Expander, i: int, step: dict[str, Any], first: int) -> list[dict[str, Any]]:
    where: Path = ("transitions", i)
    branches = step.pop("branches")
    for key in _BRANCH_BASE:
        if key in step:
            ex.add(
                "XS140",
                "bad-branches",
                f"a transition with branches holds no {key!r} of its own: each branch "
                f"has its own to, guard and guard_message",
                (*where, key),
                file=True,
            )
            step.pop(key)
    if not isinstance(branches, list) or not branches:
        ex.add(
            "XS140",
            "bad-branches",
            "branches is a non-empty list such as [{to: closed, guard: ...}, {to: open}]",
            (*where, "branches"),
            file=True,
        )
        ex.lost.add(("transitions", first))
        return [step | {"to": ""}]
    out: list[dict[str, Any]] = []
    last = len(branches) - 1
    for j, branch in enumerate(branches):
        at: Path = (*where, "branches", j)
        k = first + len(out)
        if not isinstance(branch, dict):
            message = "a branch is a mapping such as {to: closed, guard: ...}"
            ex.add("XS140", "bad-branches", message, at, file=True)
            continue
        for key in (*_NOT_IN_BRANCH, *([] if "to" in branch else ["to"])):
            if key in branch or key == "to":
                message = (
                    "a branch needs its 'to'"
                    if key == "to"
                    else f"a branch holds no {key!r}: it is the transition's"
                )
                ex.add("XS140", "bad-branches", message, (*at, key), file=True)
                branch.pop(key, None)
        if "guard" not in branch and j != last:
            ex.add(
                "XS140",
                "bad-branches",
                f"branch {j} has no guard but is not the last: the branches after it could "
                "never be taken (only the last branch may go without a guard)",
                at,
                file=True,
            )
        ex.moves[("transitions", k)] = where
        for key in branch:
            ex.moves[("transitions", k, key)] = (*at, key)
        out.append({**step, **branch})
    guarded = [b for b in branches if isinstance(b, dict) and "guard" in b]
    if len(out) > 1 and len(guarded) == len(out):
        joined = _joined_message(guarded)
        for k, merged in enumerate(out):
            merged["guard_message"] = joined
            ex.moves[("transitions", first + k, "guard_message")] = (*where, "branches")
    return out


def _joined_message(branches: list[dict[str, Any]]) -> dict[str, str]:
    """The refusal when no branch's guard holds: each branch's message, in order."""
    zh: list[str] = []
    en: list[str] = []
    for branch in branches:
        message = branch.get("guard_message")
        if isinstance(message, str):
            message = {"zh": message}
        if not isinstance(message, dict) or not isinstance(message.get("zh"), str):
            message = {"zh": f"→ {branch.get('to')}"}
        zh.append(message["zh"])
        en.append(str(message.get("en") or message["zh"]))
    out = {"zh": "；".join(zh)}
    if any(
        isinstance(b.get("guard_message"), dict) and b["guard_message"].get("en") for b in branches
    ):
        out["en"] = "; ".join(en)
    return out
