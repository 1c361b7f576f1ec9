"""The command dashboard (指挥大屏): `GET /dashboard` (a static page) and the JSON it draws.

`GET /stats/dashboard?unit=` answers every figure of the page (services.dashboard: /stats' figures
for today and this month, GET /cases' overdue count, and per day, category, child unit and place);
`GET /stats/dashboard/map?unit=` the outlines the density is drawn on. The page does no
arithmetic that defines a figure: it formats and draws what these answer. Its scripts (ECharts,
vendored, and dashboard.js) are served from `/static/dashboard/` under a CSP of 'self' only.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from api.access import CurrentUser
from api.assets import PageAssets
from api.deps import RulesDep, SessionDep
from api.geojson import GeoJSONResponse
from api.page_policy import page_headers
from api.schemas.cases import CaseStatistics
from api.schemas.geojson import Feature, features
from geo.codes import CODE_PATTERN
from services import dashboard as service

DASHBOARD_DIR = Path(__file__).resolve().parent.parent / "static" / "dashboard"

# ECharts' "save as image" and legend icons are data: URLs.
PAGE_HEADERS = page_headers({"img-src": "'self' data:"})

router = APIRouter(tags=["dashboard"])
UnitParam = Annotated[
    str | None, Query(pattern=CODE_PATTERN, description="A unit in your jurisdiction (default: yours)")
]


class Figures(BaseModel):
    """Shared configuration: `from` is a Python keyword, so fields may be filled by name too."""

    model_config = ConfigDict(populate_by_name=True)


class UnitRef(Figures):
    code: str
    name: str
    level: str


class OnTimeOverall(Figures):
    done: int = Field(description="Stages completed in the period (all stages together)")
    on_time: int = Field(description="Of those, completed within their time limit")
    late: int = Field(description="done − on_time: stage deadlines missed")
    rate: float | None


class PeriodFigures(Figures):
    start: datetime = Field(alias="from")
    to: datetime
    received: int
    closed: int
    late_stages: int
    on_time: OnTimeOverall


class RankRow(Figures):
    rank: int
    code: str
    name: str
    level: str
    received: int
    closed: int
    stages_done: int
    stages_on_time: int
    on_time_rate: float | None
    overdue_now: int


class TrendDay(Figures):
    day: date = Field(alias="date")
    received: int
    closed: int


class CategoryCount(Figures):
    code: str
    name: str
    name_en: str
    count: int


class Density(Figures):
    start: datetime = Field(alias="from")
    to: datetime
    cell_deg: float | None = Field(description="Side of a cell in degrees")
    cells: list[tuple[float, float, int]] = Field(description="[lon, lat, cases] at each cell's centre")


class Dashboard(Figures):
    """Every figure of the command dashboard for one unit."""

    unit: UnitRef
    now: datetime
    today: PeriodFigures
    month: PeriodFigures
    open_now: int = Field(description="Open cases now (GET /cases over the open statuses)")
    overdue_now: int = Field(description="Open cases past their stage's time limit now (overdue=true)")
    month_stats: CaseStatistics  # GET /stats' answer for the month: one model for both
    ranking: list[RankRow]
    trend: list[TrendDay]
    top_categories: list[CategoryCount]
    density: Density


class OutlineProperties(Figures):
    """A unit whose outline is drawn."""

    code: str
    name: str
    level: str


class Outline(Feature):
    """A unit's outline, simplified for drawing (id: its code)."""

    id: str
    properties: OutlineProperties  # type: ignore[assignment]


class Outlines(Figures):
    """A GeoJSON FeatureCollection of the unit's children (simplified for drawing)."""

    type: str = "FeatureCollection"
    features: features(Outline)  # type: ignore[valid-type]


@router.get("/stats/dashboard", response_model=Dashboard, responses={404: {"description": "No such unit"}})
def dashboard_figures(session: SessionDep, rules: RulesDep, user: CurrentUser, unit: UnitParam = None) -> Any:
    """The command dashboard's figures for a unit: today and this month (/stats), overdue now, the
    ranking of its child units, the 30-day trend, the top categories and the case density."""
    return service.dashboard(session, rules, user, unit)


@router.get(
    "/stats/dashboard/map",
    response_model=Outlines,
    response_class=GeoJSONResponse,
    responses={404: {"description": "No such unit"}},
)
def dashboard_map(session: SessionDep, user: CurrentUser, unit: UnitParam = None) -> Any:
    """The outlines the dashboard draws the case density on: the unit's children (or the unit)."""
    return service.outlines(session, user, unit)


@router.get("/dashboard", include_in_schema=False)
async def dashboard_page() -> FileResponse:
    """The big-screen page; its script asks /stats/dashboard for the signed-in user's unit."""
    return FileResponse(
        DASHBOARD_DIR / "index.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS
    )



def mount(app: FastAPI) -> None:
    """Serve the page, its JSON and its assets on `app`."""
    app.include_router(router)
    app.mount("/static/dashboard", PageAssets(DASHBOARD_DIR, PAGE_HEADERS), name="dashboard-static")
