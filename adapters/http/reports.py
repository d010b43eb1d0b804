"""``GET /reports/{kind}``: a year's report of the caller's org, as ``xieshang report`` gives it
in JSON, produced for the caller (without the detail rows of instances it may not read); with
``rollup=true``, also the figures of the orgs the deployment settings roll up to it."""

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query

from xieshang import Actor, Engine, NotFound, Usage
from xieshang.adapters.reports import KINDS, report
from xieshang.adapters.reports.rollup import rollup_report

from .auth import Authenticate
from .problems import ApiProblem, documented

__all__ = ["add_report_routes"]


def add_report_routes(api: FastAPI, engine: Engine, caller: Authenticate) -> None:
    """Add ``GET /reports/{kind}`` to ``api``. Reports are computed in SQL: over a store that
    is not SQL (the in-memory one) the route answers 501."""
    in_sql = getattr(engine.store, "url", None) is not None

    @api.get(
        "/reports/{kind}",
        operation_id="get_report",
        tags=["queries"],
        responses=documented(401, 403, 404, 422, 501),
    )
    def get_report(
        kind: Annotated[str, Path(min_length=1, max_length=50, description=" | ".join(KINDS))],
        actor: Annotated[Actor, Depends(caller)],
        year: Annotated[int, Query(ge=1900, le=9999, description="the year (UTC+8)")],
        rollup: Annotated[
            bool,
            Query(
                description="also the orgs the deployment settings roll up to this one, per org "
                "and summed (for the settings' report roles)"
            ),
        ] = False,
    ) -> dict[str, Any]:
        """The year's figures, rates, lines and notes of report ``kind``. Its counts name no
        instance and stay whole; a line that shows an instance the caller may not read is left
        out."""
        if kind not in KINDS:
            raise NotFound("report", kind, allowed=list(KINDS))
        if not in_sql:
            raise ApiProblem(501, "reports-need-sql", "reports are computed on a SQL store")
        org = actor.org  # a token's actor always has one: its org's reports are the ones it reads
        if not rollup or org is None:
            return report(kind, engine, year, org, actor=actor).to_dict()
        config = getattr(engine.registry, "config", None)
        if config is None:
            raise Usage(
                "rollup=true needs the deployment settings (--config or XIESHANG_CONFIG) the "
                "server was started with; this server has none",
                "rollup",
            )
        return rollup_report(kind, engine, year, org, config, actor).to_dict()
