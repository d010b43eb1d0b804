"""The OpenAPI document as a contract a client can be generated from.

Operation ids are the handlers' names (``fire``, ``get_history``), unless a route names its
own. Every problem response is ``application/problem+json`` only, including the 422 the
framework would describe by its own validation-error body (the API never sends that body).
The CloudEvents the deployment emits are the document's ``webhooks`` (:mod:`.webhooks`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from xieshang import Registry

from .problems import PROBLEM_JSON, documented
from .webhooks import event_components, webhook_parts, webhooks

__all__ = ["install_contracts", "operation_name"]

_FRAMEWORK_ERRORS = ("HTTPValidationError", "ValidationError")


def operation_name(route: APIRoute) -> str:
    """A route's operation id: its handler's name (``list_tokens``)."""
    return route.name


def _problems_only(document: dict[str, Any]) -> None:
    problem_422 = documented(422)[422]
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if any(
                    schema.get("schema", {}).get("$ref", "").endswith(f"/{name}")
                    for schema in content.values()
                    for name in _FRAMEWORK_ERRORS
                ):
                    response["description"] = problem_422["description"]
                    response["content"] = dict(problem_422["content"])
                elif PROBLEM_JSON in content:
                    response["content"] = {PROBLEM_JSON: content[PROBLEM_JSON]}
    components = document.get("components", {}).get("schemas", {})
    for name in _FRAMEWORK_ERRORS:
        components.pop(name, None)


def install_contracts(api: FastAPI, registry: Registry) -> None:
    """Make ``api``'s document a contract: problem responses as the API sends them, and the
    ``webhooks`` of the events the registry's workflows emit."""
    default: Callable[[], dict[str, Any]] = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is not None and "webhooks" in api.openapi_schema:
            return api.openapi_schema
        document = default()
        _problems_only(document)
        components = document.setdefault("components", {})
        components.setdefault("schemas", {}).update(event_components(registry))
        for section, parts in webhook_parts().items():
            components.setdefault(section, {}).update(parts)
        document["webhooks"] = webhooks(registry)
        api.openapi_schema = document
        return document

    api.openapi = openapi  # type: ignore[method-assign]
