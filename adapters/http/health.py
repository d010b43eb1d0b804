"""``GET /health`` (the process answers) and ``GET /ready`` (its store answers too), without a
token, for load balancers and supervisors."""

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

from xieshang import Engine
from xieshang import Query as StoreQuery

from .problems import documented, log, problem_response

__all__ = ["HealthOut", "add_health_routes"]


class HealthOut(BaseModel):
    """The process answers (health), or the store answers too (readiness)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: str


def add_health_routes(api: FastAPI, engine: Engine) -> None:
    """Add ``GET /health`` and ``GET /ready`` to ``api``."""

    @api.get("/health", operation_id="health", response_model=HealthOut, tags=["health"])
    def health() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @api.get(
        "/ready",
        operation_id="ready",
        response_model=HealthOut,
        tags=["health"],
        responses=documented(503),
    )
    def ready() -> Any:
        """The store answers too."""
        try:
            engine.store.query(StoreQuery(limit=1))
        except Exception:  # any store failure means not ready: logged, never shown
            log.exception("readiness check failed")
            return problem_response(
                503, "store-unavailable", "the store does not answer", instance="/ready"
            )
        return {"status": "ok"}
