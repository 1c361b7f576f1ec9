"""The map's query parameters, its tile answers' shared headers and the background tile source,
read by the map page, its tiles and its TileJSON alike."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query, Request

from geo.codes import CODE_PATTERN, GRID_PATTERN
from geo.settings import Settings
from maps.views import TileCrs, TileSource

MVT = "application/vnd.mapbox-vector-tile"
# Every credential a tile may be asked with (a `?key=` is in the URL itself): caches keep one per.
TILE_VARY = "Authorization, Cookie, X-API-Key"


def key_cors(request: Request) -> dict[str, str]:
    """CORS for an answer read with `?key=` (a MapLibre page on another site): any origin may read it,
    as the key in the URL is the whole credential; never with cookies (no Allow-Credentials), so a
    signed-in browser's session is no use to another site. Without a key CORS stays off."""
    return {"Access-Control-Allow-Origin": "*"} if "key" in request.query_params else {}


MAX_ZOOM = 22
CodeQuery = Annotated[str | None, Query(pattern=CODE_PATTERN)]
GridQuery = Annotated[str | None, Query(pattern=GRID_PATTERN, description="A grid: it and its neighbours")]
CrsQuery = Annotated[
    Literal["wgs84", "gcj02"] | None,
    Query(description="wgs84 (OSM, Tianditu, QGIS) or gcj02 (Amap, Tencent); default: the map page's"),
]


def tile_source(settings: Settings) -> TileSource | None:
    """The configured background tiles, if any."""
    if not settings.map_tile_url:
        return None
    return TileSource(
        url=settings.map_tile_url,
        attribution=settings.map_tile_attribution,
        max_zoom=settings.map_tile_max_zoom,
        crs=TileCrs(settings.map_tile_crs),
        subdomains=settings.map_tile_subdomains,
    )


def tile_crs(settings: Settings, asked: str | None) -> str:
    """The CRS tiles are addressed in: as asked, else the page's (GCJ-02 under a GCJ-02 background)."""
    if asked is not None:
        return asked
    return "gcj02" if settings.map_tile_crs == "gcj02" and settings.map_tile_url else "wgs84"
