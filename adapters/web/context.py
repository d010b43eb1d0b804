"""What every page handler shares: the engine, the session and rating stores, the labels, the
signed-in session of a request, CSRF checks, form bodies and rendering."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import sqlalchemy as sa
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from xieshang import Engine

from .present import Labels, templates
from .ratings import RatingLimit, RatingStore
from .sessions import Session, SessionStore

__all__ = [
    "BROWSER_COOKIE",
    "PRE_CSRF_COOKIE",
    "SESSION_COOKIE",
    "ConsoleOptions",
    "Pages",
    "form_values",
]

SESSION_COOKIE = "xs_session"
PRE_CSRF_COOKIE = "xs_signin_csrf"  # the sign-in form's CSRF secret, before any session
BROWSER_COOKIE = "xs_browser"  # the public page's browser id, for one rating per proposal
MAX_FORM_BYTES = 100_000


@dataclass(frozen=True)
class ConsoleOptions:
    """Settings of the console and public pages.

    Args:
        rating_limit: how many public ratings one client address may give in a window.
        public_workflows: the workflows the public page lists (their public fields only).
        due_soon_days: the 督办 board counts instances due within this many days as due soon.
        page_size: instances per inbox or public page.
    """

    rating_limit: RatingLimit = field(default_factory=RatingLimit)
    public_workflows: tuple[str, ...] = ("proposal",)
    due_soon_days: int = 7
    page_size: int = 50


async def form_values(request: Request) -> dict[str, list[str]]:
    """A urlencoded form body as name -> values (blank values kept); too big a body is empty."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    return parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)


def first(values: dict[str, list[str]], name: str) -> str | None:
    got = values.get(name)
    return got[0] if got else None


@dataclass
class Pages:
    """The state the page handlers share."""

    engine: Engine
    sessions: SessionStore
    ratings: RatingStore
    options: ConsoleOptions
    labels: Labels
    db: sa.Engine | None = None  # the engine's database, when it has one (reports, ratings)

    def close(self) -> None:
        """Close the pooled connections to the engine's database."""
        if self.db is not None:
            self.db.dispose()

    def session(self, request: Request) -> Session | None:
        sid = request.cookies.get(SESSION_COOKIE)
        return self.sessions.find(sid) if sid else None

    def render(
        self,
        request: Request,
        name: str,
        status_code: int = 200,
        session: Session | None = None,
        **values: Any,
    ) -> HTMLResponse:
        return templates.TemplateResponse(
            request,
            name,
            {
                "session": session,
                "actor": session.actor if session else None,
                "csrf": session.csrf if session else "",
                "labels": self.labels,
                **values,
            },
            status_code=status_code,
        )

    @staticmethod
    def to_signin() -> RedirectResponse:
        return RedirectResponse("/signin", status_code=303)

    @staticmethod
    def secure(request: Request) -> bool:
        return request.url.scheme == "https"

    def set_cookie(self, request: Request, response: Response, name: str, value: str) -> None:
        response.set_cookie(
            name,
            value,
            httponly=True,
            samesite="strict",
            secure=self.secure(request),
            path="/",
        )

    def refused_csrf(self, request: Request, session: Session | None) -> HTMLResponse:
        return self.render(
            request,
            "error.html",
            403,
            session,
            title="请求无效 / Invalid request",
            message="表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试。"
            " / The form is stale or did not come from this site (CSRF check failed).",
        )


def new_secret() -> str:
    return secrets.token_urlsafe(32)
