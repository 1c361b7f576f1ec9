"""The interactive API documentation, served whole by the service: `/docs` (Swagger UI) and `/redoc`.

FastAPI's own pages load Swagger UI and ReDoc from a CDN and start them with an inline script: a
blank page on an isolated network, and one our CSP would block. These pages load the vendored
bundles from `/static/docs/` (see its README) and start them from small local scripts
(`swagger-init.js`, `redoc-init.js`), under the Content-Security-Policy below. The OpenAPI
document declares the OAuth2 password flow on `/auth/token`, so Swagger UI's Authorize button
signs in with a username and password and sends the bearer token with every "Try it out".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse

from api import openapi
from api.assets import PageAssets
from api.page_policy import page_headers

DOCS_DIR = Path(__file__).resolve().parent.parent / "static" / "docs"

# The docs pages' additions to the strict policy (api.page_policy). Both draw data: images. ReDoc
# needs two allowances (without either it does not start, measured in headless chromium):
# - style-src 'unsafe-inline': it styles itself with styled-components, which writes <style>
#   elements at run time. Styles only: every script still comes from 'self'.
# - worker-src blob:: it runs its search index in a Web Worker made from a blob of its own bundle.
# Its sidebar's Redocly logo (from their CDN, no option turns it off) is never asked for: redoc-init.js
# gives that image an empty data: address before the browser loads it.
SWAGGER_HEADERS = page_headers({"img-src": "'self' data:"})
REDOC_HEADERS = page_headers(
    {"img-src": "'self' data:", "style-src": "'self' 'unsafe-inline'", "worker-src": "'self' blob:"}
)


router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui() -> FileResponse:
    """Swagger UI on /openapi.json, with its assets from the service."""
    return FileResponse(
        DOCS_DIR / "swagger.html", media_type="text/html; charset=utf-8", headers=SWAGGER_HEADERS
    )


@router.get("/redoc")
async def redoc() -> FileResponse:
    """ReDoc on /openapi.json, with its assets from the service."""
    return FileResponse(DOCS_DIR / "redoc.html", media_type="text/html; charset=utf-8", headers=REDOC_HEADERS)


def openapi_with_sign_in(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document (api.openapi), built once: the password flow and the session cookie as
    its security schemes on every route by its rule in api.access.RULES, and the error answers."""
    if app.openapi_schema is None:
        app.openapi_schema = openapi.build(app)
    return app.openapi_schema


def mount(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets on `app` (created with docs_url=None, redoc_url=None)."""
    app.include_router(router)
    app.mount("/static/docs", PageAssets(DOCS_DIR, SWAGGER_HEADERS), name="docs-static")
    app.openapi = lambda: openapi_with_sign_in(app)  # type: ignore[method-assign]
