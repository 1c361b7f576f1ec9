"""TileJSON 3.0.0 of the map's vector tiles, for clients other than the map page (MapLibre GL, QGIS).

`GET /map/tiles.json[?unit=|near=][&crs=][&key=]` describes the tiles of a view: an absolute URL
template that carries the same view (and the API key, when the document was asked for with one),
the zoom range, the view's bounds and centre, and each layer with its fields. See docs/map.md.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from api.conditional import client_has, etag_of
from api.deps import SessionDep, SettingsDep
from api.map_params import (
    MAX_ZOOM,
    TILE_VARY,
    CodeQuery,
    CrsQuery,
    GridQuery,
    key_cors,
    tile_crs,
)
from geo import crs as geo_crs
from geo.codes import LEVEL_NAMES, Level
from services import map_tiles, map_views

router = APIRouter(tags=["map"])
TILEJSON = "3.0.0"

# What each tile field holds (TileJSON `fields`: name → description).
FIELD_DESCRIPTIONS = {
    "code": "String: the unit's code (county 6, street 9, community 12, grid 15, micro-grid 18 digits)",
    "name": "String: the unit's name",
    "kind": "String: urban, rural or special (grids); the micro-grid's kind",
    "special_type": "String: what a special grid is (school, hospital, park, ...), else empty",
}
# What each level's layer holds, after the level's name (geo.codes.LEVEL_NAMES).
LAYER_NOTES = {
    Level.PROVINCE: "outline (where a province is stored)",
    Level.CITY: "(prefecture) outlines (where cities are stored)",
    Level.COUNTY: "outline",
    Level.STREET: "units: streets and towns",
    Level.COMMUNITY: "units: communities and villages",
    Level.GRID: f"units (left out of a tile holding over {map_tiles.FEATURE_BUDGET}: zoom in)",
    Level.MICRO_GRID: "units (buildings)",
}
LAYER_DESCRIPTIONS = {level: f"{LEVEL_NAMES[level]} {note}" for level, note in LAYER_NOTES.items()}


class VectorLayer(BaseModel):
    """One layer of the tiles (TileJSON 3.3)."""

    id: str
    description: str
    fields: dict[str, str]
    minzoom: int
    maxzoom: int


class TileJson(BaseModel):
    """A TileJSON 3.0.0 document."""

    tilejson: str = TILEJSON
    name: str
    description: str
    version: str = Field(description="1.<boundary generation>.0: a new minor version when units change")
    scheme: Literal["xyz"] = "xyz"
    tiles: list[str]
    minzoom: int
    maxzoom: int
    bounds: list[float]
    center: list[float | int] = Field(description="lon, lat, zoom")
    vector_layers: list[VectorLayer]


def vector_layers() -> list[VectorLayer]:
    """The tiles' layers: one per level, with the fields store.tiles writes for it."""
    return [
        VectorLayer(
            id=str(level),
            description=LAYER_DESCRIPTIONS[level],
            fields={f: FIELD_DESCRIPTIONS[f] for f in fields},
            minzoom=map_tiles.MIN_ZOOM.get(level, 0),
            maxzoom=MAX_ZOOM,
        )
        for level, fields in map_tiles.PROPERTIES.items()
    ]


def fitting_zoom(bounds: tuple[float, float, float, float], pixels: int = 1024) -> int:
    """The deepest zoom at which `bounds` fits in `pixels` × `pixels` of 256 px tiles."""
    minx, miny, maxx, maxy = bounds
    span_x = max(maxx - minx, 1e-9) / 360.0
    mercator = [math.asinh(math.tan(math.radians(v))) for v in (miny, maxy)]
    span_y = max(mercator[1] - mercator[0], 1e-9) / (2 * math.pi)
    zoom = math.floor(math.log2(pixels / 256 / max(span_x, span_y)))
    return min(max(zoom, 0), MAX_ZOOM)


def _shifted(bounds: tuple[float, ...], crs: str) -> list[float]:
    if crs != "gcj02":
        return [round(v, 6) for v in bounds]
    xs, ys = geo_crs.wgs84_to_gcj02([bounds[0], bounds[2]], [bounds[1], bounds[3]])
    return [round(float(v), 6) for v in (xs[0], ys[0], xs[1], ys[1])]


@router.get("/map/tiles.json", response_model=TileJson, responses={304: {"description": "Unchanged (ETag)"}})
def tilejson(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    unit: CodeQuery = None,
    near: GridQuery = None,
    crs: CrsQuery = None,
    key: Annotated[str | None, Query(max_length=100, description="An API key, carried into `tiles`")] = None,
) -> Response:
    """TileJSON 3.0.0 of the view's vector tiles: point MapLibre GL (`url`) or QGIS at it."""
    bounds = _shifted(map_views.view_bounds(session, unit, near), tile_crs(settings, crs))
    generation = map_views.generation(session)
    query = urlencode({k: v for k, v in (("unit", unit), ("near", near), ("crs", crs), ("g", generation),
                                         ("key", key)) if v is not None})  # fmt: skip
    center = [round((bounds[0] + bounds[2]) / 2, 6), round((bounds[1] + bounds[3]) / 2, 6)]
    base = str(request.base_url).rstrip("/")
    doc = TileJson(
        name=f"网格 Grid units · {unit or near or 'all'}",
        description="县、街道、社区、网格、微网格 County, streets, communities, grids and micro-grids",
        version=f"1.{generation}.0",
        tiles=[f"{base}/map/tiles/{{z}}/{{x}}/{{y}}.pbf?{query}"],
        minzoom=0,
        maxzoom=MAX_ZOOM,
        bounds=bounds,
        center=[*center, fitting_zoom(tuple(bounds))],
        vector_layers=vector_layers(),
    )
    body = json.dumps(doc.model_dump(), ensure_ascii=False).encode()
    headers = {"Cache-Control": "private, no-cache", "Vary": TILE_VARY, "ETag": etag_of(body)}
    headers.update(key_cors(request))
    if client_has(request, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
