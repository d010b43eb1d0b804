"""The workflow routes: the deployment's workflows, their definitions, JSON Schemas and
diagrams, and the schema of the workflow file format."""

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Response

from xieshang import Actor, Definition, Engine, Usage, XieshangError
from xieshang.adapters.common import MEDIA_TYPES, DiagramFormat, draw
from xieshang.shared import schema_json

from .auth import Authenticate
from .problems import ApiProblem, documented
from .schemas import WorkflowOut, WorkflowSchemasOut
from .workflow_schemas import workflow_schemas

__all__ = ["DOT_TIMEOUT_SECONDS", "add_workflow_routes"]

DOT_TIMEOUT_SECONDS = 20


def _drawn(definition: Definition, fmt: DiagramFormat) -> bytes:
    try:
        return draw(definition, fmt, timeout=DOT_TIMEOUT_SECONDS)
    except Usage as e:  # only graphviz missing
        raise ApiProblem(
            501, "graphviz-missing", "SVG needs graphviz 'dot' on the server; use format=mermaid"
        ) from e
    except XieshangError as e:
        raise ApiProblem(501, "graphviz-failed", "graphviz 'dot' could not draw it") from e


def add_workflow_routes(api: FastAPI, engine: Engine, caller: Authenticate) -> None:
    """Add ``GET /workflows...`` and ``GET /schemas/workflow-format`` to ``api``, for the actor
    ``caller`` authenticates."""
    Caller = Annotated[Actor, Depends(caller)]

    @api.get(
        "/workflows",
        response_model=list[WorkflowOut],
        operation_id="list_workflows",
        tags=["workflows"],
        responses=documented(401),
    )
    def list_workflows(actor: Caller) -> list[dict[str, Any]]:
        """The workflows this deployment runs (newest version of each)."""
        return [
            {
                "id": wf.id,
                "version": wf.definition.version,
                "title": wf.definition.title.model_dump(),
                "description": wf.definition.description,
                "hash": wf.hash,
                "states": list(wf.definition.states),
                "triggers": wf.definition.triggers(),
            }
            for wf in sorted(engine.registry, key=lambda w: w.id)
        ]

    @api.get(
        "/workflows/{workflow_id}",
        response_model=dict[str, Any],
        operation_id="get_workflow",
        tags=["workflows"],
        responses=documented(401, 404, 422),
    )
    def get_workflow(
        workflow_id: str,
        actor: Caller,
        version: Annotated[int | None, Query(ge=1)] = None,
    ) -> dict[str, Any]:
        """The workflow's definition, as JSON with the YAML spellings."""
        return engine.registry.get(workflow_id, version).definition.to_json()

    @api.get(
        "/workflows/{workflow_id}/schema",
        operation_id="get_workflow_schema",
        response_model=WorkflowSchemasOut,
        tags=["workflows"],
        responses=documented(401, 404, 422),
    )
    def get_schema(
        workflow_id: str,
        actor: Caller,
        version: Annotated[int | None, Query(ge=1)] = None,
    ) -> dict[str, Any]:
        """The workflow's JSON Schemas: its instances' data, each trigger's payload, the data a
        start takes."""
        return workflow_schemas(engine.registry.get(workflow_id, version).definition)

    @api.get(
        "/schemas/workflow-format",
        operation_id="get_workflow_format_schema",
        response_model=dict[str, Any],
        tags=["workflows"],
        responses=documented(401),
    )
    def get_format_schema(actor: Caller) -> dict[str, Any]:
        """The JSON Schema of the workflow definition format (for editors of workflow files)."""
        return schema_json()

    @api.get(
        "/workflows/{workflow_id}/diagram",
        operation_id="get_diagram",
        tags=["workflows"],
        response_class=Response,
        responses={
            200: {
                "description": "Mermaid or Graphviz dot text, or an SVG picture",
                "content": {
                    "text/plain": {"schema": {"type": "string"}},
                    "text/vnd.graphviz": {"schema": {"type": "string"}},
                    "image/svg+xml": {"schema": {"type": "string"}},
                },
            },
            **documented(401, 404, 422, 501),
        },
    )
    def get_diagram(
        workflow_id: str,
        actor: Caller,
        format: Annotated[DiagramFormat, Query()] = DiagramFormat.mermaid,
    ) -> Response:
        """The workflow drawn as Mermaid or Graphviz dot text, or (with graphviz on the server)
        SVG."""
        definition = engine.registry.get(workflow_id).definition
        return Response(_drawn(definition, format), media_type=MEDIA_TYPES[format])
