"""The field worker page: `GET /report` and its assets under `/static/report/`, all served by the service.

No CDN and no inline code: the page runs under a Content-Security-Policy that allows only 'self'
(plus `blob:` images, the thumbnails of photos not yet sent, which never leave the phone). A service
worker (`sw.js`, scope `/report`) keeps the page openable offline once it has been opened online.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from pydantic import BaseModel

from api.access import CurrentUser
from api.assets import PageAssets
from api.page_policy import FIELD_PAGE_HEADERS

REPORT_DIR = Path(__file__).resolve().parent.parent / "static" / "report"
FIELD_DIR = REPORT_DIR.parent / "field"  # what the field pages share (helpers, the offline shell)

# blob: images are the thumbnails of photos not yet sent, which never leave the phone.

router = APIRouter(tags=["field worker page"])


@router.get("/report", include_in_schema=False)
async def report_page() -> FileResponse:
    """The phone page for grid workers to report a case on patrol."""
    page = REPORT_DIR / "index.html"
    return FileResponse(page, media_type="text/html; charset=utf-8", headers=FIELD_PAGE_HEADERS)


class Reporter(BaseModel):
    """Who the page reports as: nobody (a citizen), or a signed-in user and their unit."""

    signed_in: bool
    username: str | None = None
    role: str | None = None
    unit_code: str | None = None


@router.get("/report/me", response_model=Reporter)
async def report_me(user: CurrentUser) -> Reporter:
    """Whether the page has a signed-in user (public: a citizen's page asks too, and gets `false`)."""
    if user is None:
        return Reporter(signed_in=False)
    return Reporter(signed_in=True, username=user.username, role=user.role, unit_code=user.unit_code)


def mount(app: FastAPI) -> None:
    """Serve the page and its assets on `app`."""
    app.include_router(router)
    app.mount("/static/report", PageAssets(REPORT_DIR, FIELD_PAGE_HEADERS, "/report"), name="report-static")
    app.mount("/static/field", PageAssets(FIELD_DIR, FIELD_PAGE_HEADERS), name="field-static")
