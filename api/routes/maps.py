"""The live map: `GET /map` (a folium page) and the data it asks for under `/map/...`.

Views: dispatcher (`/map`, `/map?unit=CODE`), field worker (`/map?grid=CODE`: the grid and its
neighbours) and planner (`/map?view=planner[&unit=CODE][&plan=ID]`: boundaries with coverage
findings and a draft plan's changes). The page's scripts and styles are served from `/static/map/`
(vendored, with licences): it requests nothing outside the service unless a background tile source
is configured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from access.roles import Permission
from api.access import CurrentUser
from api.assets import PageAssets
from api.conditional import client_has, etag_of
from api.deps import RulesDep, SessionDep, SettingsDep
from api.errors import InvalidParameter, NotFound
from api.geojson import GeoJSONResponse
from api.map_params import (
    MAX_ZOOM,
    MVT,
    TILE_VARY,
    CodeQuery,
    CrsQuery,
    GridQuery,
    key_cors,
    tile_crs,
    tile_source,
)
from api.schemas.geojson import FeatureCollection
from api.schemas.map_cases import MapCases
from api.schemas.units import UnitPopup, UnitSearch
from geo.codes import Level, level_of
from maps.page import render_page
from maps.views import TileSource, build_map
from services import map_cases, map_layers, map_tiles, map_views

router = APIRouter(tags=["map"])

MAP_DIR = Path(__file__).resolve().parent.parent / "static" / "map"


@router.get("/map", response_class=HTMLResponse, include_in_schema=True)
def map_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
    unit: CodeQuery = None,
    grid: GridQuery = None,
    view: Annotated[str, Query(pattern="^(dispatcher|planner|field)$")] = "dispatcher",
    plan: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")] = None,
) -> HTMLResponse:
    """The live map page: dispatcher (default), field worker (`grid=`) or planner (`view=planner`)."""
    if unit is None and grid is None and user is not None and user.unit_code:
        # Signed-in users open on their own unit (a city's user on the city, not the province);
        # a field worker on their grid and its neighbours.
        if level_of(user.unit_code) == Level.GRID:
            grid = user.unit_code
        else:
            unit = user.unit_code
    if view == "field" and grid is None:
        raise InvalidParameter("view=field needs grid=CODE (the field worker's grid)")
    spec = map_views.map_view(session, user, view=view, unit=unit, grid=grid, plan=plan)
    source = tile_source(settings)
    page = render_page(build_map(spec, source), spec.title, _origin(source))
    headers = {
        "Content-Security-Policy": page.content_security_policy,
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    return HTMLResponse(page.html, headers=headers)


def _origin(source: TileSource | None) -> str | None:
    if source is None:
        return None
    parts = urlsplit(source.url)
    # {s} subdomains: allow the parent domain's hosts (a.tile.example.org -> *.tile.example.org)
    host = parts.netloc.replace("{s}.", "*.").replace("{s}", "*")
    return f"{parts.scheme}://{host}" if parts.scheme else "'self'"


@router.get("/map/tiles/{z}/{x}/{y}.pbf", response_class=Response, responses={200: {"content": {MVT: {}}}})
def view_tile(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    z: Annotated[int, PathParam(ge=0, le=MAX_ZOOM)],
    x: Annotated[int, PathParam(ge=0)],
    y: Annotated[int, PathParam(ge=0)],
    unit: CodeQuery = None,
    near: GridQuery = None,
    size: Annotated[int, Query(description="Display px: a 512 px tile at z = the 256 px tile at z-1")] = 256,
    g: Annotated[int | None, Query(ge=0, description="Boundary generation (GET /map/boundaries)")] = None,
    crs: CrsQuery = None,
) -> Response:
    """A Mapbox vector tile of the view's current units, one layer per level (named after it)."""
    if size not in (256, 512):
        raise InvalidParameter(f"size={size}: tiles are 256 or 512 pixels")
    if size == 512:
        if z == 0:
            raise NotFound("512 px tiles start at zoom 1")
        z -= 1  # the same area as a 256 px tile one zoom up: a quarter of the requests
    if x >= 2**z or y >= 2**z:
        raise NotFound(f"no tile {z}/{x}/{y}: x and y go up to {2**z - 1} at zoom {z}")
    gcj02 = tile_crs(settings, crs) == "gcj02"
    filters = map_views.tile_filters(session, unit, near)  # 404 for an unknown unit or grid
    served = map_tiles.view_tile(session, request.app.state.tile_cache, z, x, y, filters, gcj02=gcj02)
    tile = served.tile
    features = ", ".join(f"{k}={v}" for k, v in tile.features.items())
    # Boundaries need a sign-in: only the client may keep a tile, per credentials (a shared cache
    # must not hand one user's tile to another). A URL with the boundary generation `g` is replaced
    # by a new one when units change, so it may be kept longer; either is revalidated by its ETag.
    cache = "private, max-age=86400" if g is not None else "private, max-age=60"
    headers = {"Cache-Control": cache, "Vary": TILE_VARY, "ETag": etag_of(tile.data, features.encode())}
    headers.update(key_cors(request))
    if client_has(request, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    headers["X-Tile-Features"] = features
    headers["X-Tile-Source"] = served.source  # cache, simplified or stored outlines (docs/map.md)
    if tile.omitted:
        over = f"over {map_tiles.FEATURE_BUDGET} features, zoom in"
        headers["X-Tile-Omitted"] = f"{', '.join(tile.omitted)}: {over}"
    return Response(tile.data, media_type=MVT, headers=headers)


@router.get("/map/units/{code}", response_model=UnitPopup, responses={404: {"description": "No such unit"}})
def unit_popup(code: str, session: SessionDep) -> dict[str, Any]:
    """A unit's popup: names, parent chain, staff and party-cell counts, open and overdue cases."""
    return map_views.unit_popup(session, code)


@router.get("/map/search", response_model=UnitSearch)
def search(session: SessionDep, q: Annotated[str, Query(min_length=1, max_length=50)]) -> dict[str, Any]:
    """Current units by code prefix or part of the name, with their extents (for fitting the map)."""
    return {"units": map_views.search_units(session, q)}


class UnitLabel(BaseModel):
    """Where the map writes a unit's name: its label point and its extent (lon/lat)."""

    code: str
    name: str
    level: str
    lon: float
    lat: float
    bbox: list[float]


class UnitLabels(BaseModel):
    """The label points of a view's units."""

    labels: list[UnitLabel]


def _bbox(value: str) -> tuple[float, float, float, float]:
    try:
        minx, miny, maxx, maxy = (float(v) for v in value.split(","))
    except ValueError:
        raise InvalidParameter("bbox must be minlon,minlat,maxlon,maxlat") from None
    if not (-180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90):
        raise InvalidParameter("bbox must be minlon,minlat,maxlon,maxlat with min < max, in degrees")
    return minx, miny, maxx, maxy


@router.get("/map/labels", response_model=UnitLabels)
def unit_labels(
    session: SessionDep,
    bbox: Annotated[str, Query(max_length=120, description="minlon,minlat,maxlon,maxlat (WGS84)")],
    level: Annotated[list[str], Query(description="street, community, grid")] = ["community", "grid"],  # noqa: B006
) -> UnitLabels:
    """Label points of the current units in `bbox` (the page writes a name where it fits its unit)."""
    rows = map_views.labels(session, _bbox(bbox), level)
    return UnitLabels(labels=[UnitLabel(**r) for r in rows])


@router.get(
    "/map/cases",
    response_class=GeoJSONResponse,
    response_model=MapCases,
    responses={404: {"description": "No such grid"}, 422: {"description": "A bad box or zoom, or one alone"}},
)
def open_cases(
    session: SessionDep,
    rules: RulesDep,
    settings: SettingsDep,
    user: CurrentUser,
    unit: CodeQuery = None,
    near: GridQuery = None,
    bbox: Annotated[str | None, Query(max_length=120, description="minlon,minlat,maxlon,maxlat")] = None,
    zoom: Annotated[int | None, Query(description="The map's zoom, with bbox: clusters far out")] = None,
) -> dict:
    """The view's open cases in the user's jurisdiction as GeoJSON points, overdue first (the map polls);
    with `bbox` and `zoom`, those in the box, in clusters where many are close (docs/map.md)."""
    if (bbox is None) != (zoom is None):
        raise InvalidParameter("bbox and zoom go together: the map's view and its zoom")
    if bbox is None or zoom is None:
        return map_cases.open_cases(session, rules, user, unit=unit, near=near)
    if near is not None:
        raise InvalidParameter("near= shows a grid's neighbourhood: it takes no bbox and zoom")
    return map_cases.cases_in_view(
        session, rules, user, bbox=_bbox(bbox), zoom=zoom, unit=unit,
        clusters_above=settings.map_case_clusters_above,
    )  # fmt: skip


@router.get("/map/party", response_class=GeoJSONResponse, response_model=FeatureCollection)
def party_cells(
    session: SessionDep, user: CurrentUser, unit: CodeQuery = None, near: GridQuery = None
) -> dict:
    """Party cells of the view inside the user's jurisdiction as GeoJSON points, counted, never named;
    central households to ~100 m unless the role may read their points (docs/security.md)."""
    assert user is not None  # the route's access rule requires a signed-in user
    exact = user.can(Permission.READ_PARTY_POINTS)
    if near is not None:
        codes = [c for c in map_views.neighbourhood(session, near) if user.covers(c)]
        return map_layers.party_cells(session, codes=codes, exact=exact)
    return map_layers.party_cells(session, unit=unit or user.unit_code, exact=exact)


def mount(app: FastAPI) -> None:
    """Serve the map page, its data and its assets on `app`."""
    app.state.tile_cache = map_tiles.TileCache()
    app.include_router(router)
    app.mount("/static/map", PageAssets(MAP_DIR), name="map-static")
