"""RFC 9457 problem details: every error the API returns, and the status each of our errors gets.

The mapping (one place, pinned by a test per row)::

    NotFound              404  (also another org's instance: it does not exist for the caller)
    UnknownTrigger        422  (the instance exists; the trigger named in the body is not one of
                                its definition's, so the request body is what is wrong)
    TransitionNotAllowed  409  (the trigger exists, but the instance's state or guard refuses it)
    Forbidden             403
    InvalidPayload        422
    ConcurrencyConflict   409, or 412 when the request sent If-Match
    DefinitionError       422
    CalendarError         422
    Usage                 422  (an argument no call could take: a query criterion with NUL ...)
    other refusals        422
    store unavailable     503  (code ``store-unavailable``; no driver message)
    other XieshangError   500  (a store error may hold SQL: logged, never sent)
    request validation    422  (also a body that is not JSON, or nests too deep to read)
    body too large        413
    body too slow         408
    method not allowed    405, with Allow naming every method of the path
    missing/bad token     401, with WWW-Authenticate
    anything else         500, with no detail (the exception is logged, never returned)
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from xieshang import (
    CalendarError,
    CommandRefused,
    ConcurrencyConflict,
    DefinitionError,
    Forbidden,
    InvalidPayload,
    NotFound,
    StoreUnavailable,
    TransitionNotAllowed,
    UnknownTrigger,
    Usage,
    XieshangError,
)

from .problem_schemas import ProblemOut

__all__ = [
    "PROBLEM_JSON",
    "ApiProblem",
    "documented",
    "install_handlers",
    "problem_response",
    "status_of",
]

PROBLEM_JSON = "application/problem+json"
UNAVAILABLE = StoreUnavailable.code
INTERNAL = "an unexpected error occurred; it has been logged"
log = logging.getLogger("xieshang.http")

_STATUS: tuple[tuple[type[XieshangError], int], ...] = (
    (NotFound, 404),
    (UnknownTrigger, 422),
    (TransitionNotAllowed, 409),
    (Forbidden, 403),
    (InvalidPayload, 422),
    (ConcurrencyConflict, 409),
    (DefinitionError, 422),
    (CalendarError, 422),
    (Usage, 422),
)
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    409: "Conflict",
    412: "Precondition failed",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    500: "Internal server error",
    501: "Not implemented",
    503: "Service unavailable",
}
_RESERVED = frozenset({"type", "title", "status", "detail", "instance"})


class ApiProblem(Exception):
    """A problem the HTTP layer itself raises (authentication, body size, preconditions ...)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entries of these problem statuses."""
    described = {
        401: "Missing, invalid or revoked bearer token.",
        403: "The caller's roles do not allow this.",
        404: "No such resource (another org's instance does not exist for the caller).",
        409: "The state refuses the trigger, or another write won (without If-Match).",
        412: "If-Match did not match the instance's current version.",
        413: "The request body is larger than the limit.",
        422: "The request, payload or data is invalid.",
        501: "Not available on this server.",
        503: "The store does not answer.",
    }
    return {
        s: {
            "model": ProblemOut,
            "description": described[s],
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemOut"}}},
        }
        for s in statuses
    }


def status_of(error: XieshangError, *, if_match: bool = False) -> int:
    """The HTTP status of one of our errors (412 for a conflict when If-Match was sent).

    A refusal of a kind not in the table is 422; a store that does not answer is 503; any other
    error is the server's (500), and its message, which may hold SQL, is logged, never sent.
    """
    if isinstance(error, ConcurrencyConflict) and if_match:
        return 412
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    if isinstance(error, CommandRefused):
        return 422
    return 503 if isinstance(error, StoreUnavailable) else 500


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A ``application/problem+json`` response: type, title, status, detail, code, extensions."""
    body: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance is not None:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if k not in _RESERVED and k != "code"})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _engine_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, XieshangError)
    if_match = request.headers.get("if-match") is not None
    status = status_of(exc, if_match=if_match)
    if status >= 500:
        log.error("%s on %s %s", exc.code, request.method, request.url.path, exc_info=exc)
        if status == 503:
            return problem_response(
                503, UNAVAILABLE, "the store does not answer; try again", instance=request.url.path
            )
        return problem_response(500, "internal-error", INTERNAL, instance=request.url.path)
    code = "precondition-failed" if status == 412 else exc.code
    details = {k: v for k, v in exc.to_dict().items() if k not in ("code", "message")}
    return problem_response(status, code, exc.message, instance=request.url.path, **details)


def _api_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return problem_response(
        exc.status,
        exc.code,
        exc.detail,
        instance=request.url.path,
        headers=exc.headers,
        **exc.extra,
    )


def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": ".".join(str(p) for p in err.get("loc", ())),
            "error": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]
    lines = "; ".join(f"{e['field']}: {e['error']}" for e in errors)
    if errors and all(e["field"] == "query.cursor" for e in errors):
        cursor = request.query_params.get("cursor")
        return problem_response(
            422,
            "invalid-cursor",
            f"cursor {cursor!r} is not one this API gave (a page's next_cursor)",
            instance=request.url.path,
            errors=errors,
        )
    return problem_response(
        422,
        "invalid-request",
        f"invalid request: {lines}",
        instance=request.url.path,
        errors=errors,
    )


def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # a body that cannot be decoded at all: as invalid as bad JSON
        return problem_response(
            422,
            "invalid-request",
            "the request body cannot be read as JSON: it is not JSON, or it nests deeper than "
            "a JSON reader goes (values may nest 32 levels)",
            instance=request.url.path,
        )
    codes = {
        404: "not-found",
        405: "method-not-allowed",
        408: "request-timeout",
        413: "body-too-large",
    }
    code = codes.get(exc.status_code, "http-error")
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        allowed = _allowed_methods(request)
        headers["Allow"] = allowed
        detail = f"{request.method} is not a method of {request.url.path}; allowed: {allowed}"
    return problem_response(
        exc.status_code, code, detail, instance=request.url.path, headers=headers or None
    )


def _allowed_methods(request: Request) -> str:
    """Every method some route of the app answers at the request's path (the router stops at
    the first route whose path matches, which knows only its own)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        if route.matches(request.scope)[0] is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, "internal-error", INTERNAL, instance=request.url.path)


def install_handlers(app: FastAPI) -> None:
    """Render every error as problem+json, and never a stack trace, SQL or driver message."""
    app.add_exception_handler(XieshangError, _engine_error)
    app.add_exception_handler(ApiProblem, _api_problem)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
