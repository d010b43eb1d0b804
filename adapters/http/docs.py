"""The API's documentation pages (Swagger UI at ``/docs``, ReDoc at ``/redoc``), served offline.

Both pages load their scripts and styles from the package (``static/``, vendored from the npm
packages ``swagger-ui-dist`` 5.32.0 and ``redoc`` 2.5.1), never from a CDN: a 政协 office's
intranet has no internet, and the pages must work there.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["STATIC", "install_docs"]

STATIC = Path(__file__).resolve().parent / "static"
PREFIX = "/static/docs"


def install_docs(api: FastAPI) -> None:
    """Serve ``/docs`` and ``/redoc`` with the vendored assets (create the app with
    ``docs_url=None, redoc_url=None``)."""
    api.mount(PREFIX, StaticFiles(directory=STATIC), name="docs-static")
    openapi_url = api.openapi_url or "/openapi.json"

    @api.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{api.title} · API",
            swagger_js_url=f"{PREFIX}/swagger/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/swagger/swagger-ui.css",
            swagger_favicon_url=f"{PREFIX}/swagger/favicon-32x32.png",
        )

    @api.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{api.title} · API",
            redoc_js_url=f"{PREFIX}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{PREFIX}/swagger/favicon-32x32.png",
            with_google_fonts=False,
        )
