"""The reports by name: :data:`KINDS` and :func:`report`."""

from __future__ import annotations

from typing import Any

from xieshang import Actor

from .appraisal import appraisal_report
from .duties import duties_report, scope_duties
from .handling import handling_report
from .key_proposals import key_proposals_report
from .micro import micro_report
from .model import Report
from .online import online_report
from .opinions import opinions_report
from .plan import plan_report
from .public_ratings import public_ratings_report
from .review import review_report
from .scope import scope_report

__all__ = ["KINDS", "report"]

KINDS = {
    "review": review_report,
    "handling": handling_report,
    "plan": plan_report,
    "opinions": opinions_report,
    "key_proposals": key_proposals_report,
    "appraisal": appraisal_report,
    "micro": micro_report,
    "online": online_report,
    "public_ratings": public_ratings_report,
    "duties": duties_report,
}


def report(
    kind: str, source: Any, year: int, org: str | None = None, actor: Actor | None = None
) -> Report:
    """The report ``kind`` (one of :data:`KINDS`); for ``actor``, without the detail rows of
    instances it may not read (:func:`.scope.scope_report`)."""
    try:
        fn = KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown report {kind!r}; one of {', '.join(KINDS)}") from None
    rep = scope_report(fn(source, year, org), source, actor)
    return scope_duties(rep, actor) if kind == "duties" else rep
