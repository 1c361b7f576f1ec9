"""The planner's redraw editor: `GET /plan` (pick a unit, open or resume a draft) and
`GET /plan/{plan_id}` (draw edits, see validation, impact and balance, publish), its assets under
`/static/plan/`, and the two JSON answers it needs beyond the plan API (an edit's preview, the
balance of a draft).

The page is static HTML and plain JS under a Content-Security-Policy of 'self' only (no inline
code); every rule stays in Python behind the plan API: the page only draws what it is told.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from pydantic import BaseModel

from api.assets import PageAssets
from api.deps import SessionDep, SettingsDep
from api.geojson import GeoJSONResponse
from api.page_policy import page_headers
from api.plan_edits import EditIn
from api.schemas.geojson import Features
from services import plan_editor

PLAN_DIR = Path(__file__).resolve().parent.parent / "static" / "plan"

# Leaflet and Leaflet-Geoman set style attributes on the map's elements; styles run no code.
PAGE_HEADERS = page_headers({"style-src": "'self' 'unsafe-inline'", "img-src": "'self' data: blob:"})

router = APIRouter(tags=["planner's editor"])


class PreviewOut(BaseModel):
    """The units an edit would create, change or retire (GeoJSON), in the order the edit makes them."""

    type: str = "FeatureCollection"
    allocated: list[str]
    notes: list[str]
    features: Features


class GridBalanceOut(BaseModel):
    """One grid of the draft against the size norm of its kind."""

    code: str
    name: str
    kind: str | None
    households: int | None
    norm: list[int] | None
    status: str
    estimated: bool
    changed: bool


class SpreadOut(BaseModel):
    """How even the grids of one kind are: smallest, largest, max/min, deviation from the norm."""

    kind: str
    grids: int
    min: int
    max: int
    ratio: float | None
    mean_deviation: float


class BalanceOut(BaseModel):
    """Households per grid of the draft against the size norms, and the spread per kind."""

    norms: dict[str, list[int]]
    grids: list[GridBalanceOut]
    spread: list[SpreadOut]


def _page() -> FileResponse:
    return FileResponse(PLAN_DIR / "index.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.get("/plan", include_in_schema=False)
async def editor_start() -> FileResponse:
    """The editor's start: pick a unit, open a new draft or resume one."""
    return _page()


@router.get("/plan/{plan_id}", include_in_schema=False)
async def editor(plan_id: int) -> FileResponse:
    """The editor on one draft (the page asks the plan API for everything it shows)."""
    return _page()


@router.post("/plans/{plan_id}/preview", response_class=GeoJSONResponse)
def preview_edit(plan_id: int, body: EditIn, session: SessionDep) -> PreviewOut:
    """What an edit would do to the draft (nothing is stored); refused (422) when it cannot apply."""
    return PreviewOut(**plan_editor.preview(session, plan_id, body.to_edit()))


@router.get("/plans/{plan_id}/balance")
def balance(plan_id: int, session: SessionDep, settings: SettingsDep) -> BalanceOut:
    """Households of every grid of the draft against its kind's size norm; the spread per kind."""
    return BalanceOut(**plan_editor.plan_balance(session, plan_id, settings))


def mount(app: FastAPI) -> None:
    """Serve the editor's pages, JSON and assets on `app`."""
    app.include_router(router)
    app.mount("/static/plan", PageAssets(PLAN_DIR, PAGE_HEADERS), name="plan-static")
