"""Sign-in (an API token exchanged for a session cookie) and sign-out.

The sign-in form has no session yet, so its CSRF secret is a cookie of its own, which the form
must carry back (double submit); every later form carries the session's secret.
"""

from __future__ import annotations

import hmac

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from .context import PRE_CSRF_COOKIE, SESSION_COOKIE, Pages, first, form_values, new_secret

__all__ = ["add_signin_routes"]


def add_signin_routes(api: FastAPI, pages: Pages) -> None:
    """Add ``GET|POST /signin`` and ``POST /signout``."""

    def _form(request: Request, status: int = 200, error: str | None = None) -> HTMLResponse:
        secret = request.cookies.get(PRE_CSRF_COOKIE) or new_secret()
        response = pages.render(request, "signin.html", status, signin_csrf=secret, error=error)
        pages.set_cookie(request, response, PRE_CSRF_COOKIE, secret)
        return response

    @api.get("/signin", include_in_schema=False, response_class=HTMLResponse)
    def signin_form(request: Request) -> Response:
        if pages.session(request) is not None:
            return RedirectResponse("/", status_code=303)
        return _form(request)

    @api.post("/signin", include_in_schema=False, response_class=HTMLResponse)
    async def signin(request: Request) -> Response:
        values = await form_values(request)
        sent, kept = first(values, "csrf") or "", request.cookies.get(PRE_CSRF_COOKIE) or ""
        if not kept or not hmac.compare_digest(sent.encode(), kept.encode()):
            return pages.refused_csrf(request, None)
        token = (first(values, "token") or "").strip()
        session = await run_in_threadpool(pages.sessions.open, token) if token else None
        if session is None:
            return _form(
                request,
                401,
                "令牌无效或已吊销 / The token is invalid or revoked",
            )
        response = RedirectResponse("/", status_code=303)
        pages.set_cookie(request, response, SESSION_COOKIE, session.id)
        response.delete_cookie(PRE_CSRF_COOKIE, path="/")
        return response

    @api.post("/signout", include_in_schema=False, response_class=HTMLResponse)
    async def signout(request: Request) -> Response:
        session = await run_in_threadpool(pages.session, request)
        if session is None:
            return pages.to_signin()
        values = await form_values(request)
        if not session.csrf_ok(first(values, "csrf")):
            return pages.refused_csrf(request, session)
        await run_in_threadpool(pages.sessions.end, session.id)
        response = pages.to_signin()
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
