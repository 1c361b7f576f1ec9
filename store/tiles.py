"""Mapbox vector tiles of the units, made by PostGIS (`ST_AsMVT`), one layer per level.

The tile envelope is transformed to the storage CRS to select rows, never the indexed column, so
the GiST index on `unit_versions.geom` answers. Only the selected rows are projected to Web
Mercator for `ST_AsMVTGeom`, which snaps every vertex to the tile's integer grid: two neighbours
sharing an edge get the same snapped vertices, so no slivers or gaps appear that the data lacks.

Up to z12 (geo/zoom_bands.py) tiles are cut from `unit_simplified` instead when it is current
(`simplified=True`): outlines already in Web Mercator, simplified per zoom band as coverages, so
neighbours share their edges at every zoom and a province-wide tile reads a few hundred outlines,
not a few hundred thousand. Which levels a zoom draws is geo.zoom_bands' rule, for both sources.

GCJ-02 tile sources (Amap style) address tiles in GCJ-02 Web Mercator. PostGIS does not know
GCJ-02, so for them the rows are shifted in Python with `geo.crs` (the project's one GCJ-02
implementation) and handed back to PostGIS to be cut into the tile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo import crs, zoom_bands
from geo.codes import CODE_LENGTH, Level
from store.geometry import from_wkb_array
from store.units import valid_at_sql

EXTENT = 4096  # tile units per side: ~8 m at z10 in China, finer than any grid edge worth drawing
BUFFER = 64  # tile units drawn beyond the edge so strokes do not stop at tile borders
FEATURE_BUDGET = zoom_bands.FEATURE_BUDGET
MIN_ZOOM = zoom_bands.MIN_ZOOM  # the TileJSON states each layer's
SIMPLIFIED_UP_TO = zoom_bands.SIMPLIFIED_UP_TO
WEB_MERCATOR_HALF = 20037508.342789244
STORED = "unit_versions"  # the tables tiles are cut from: stored outlines (lon/lat)
SIMPLIFIED = "unit_simplified"  # or simplified per zoom band (Web Mercator), migration 0017

# What each layer's features carry; popups ask /map/units/{code} for everything else.
PROPERTIES = {
    Level.PROVINCE: ("code", "name"),
    Level.CITY: ("code", "name"),
    Level.COUNTY: ("code", "name"),
    Level.STREET: ("code", "name"),
    Level.COMMUNITY: ("code", "name"),
    Level.GRID: ("code", "name", "kind", "special_type"),
    Level.MICRO_GRID: ("code", "name", "kind"),
}
# Grids and micro-grids are numerous: picked by the spatial index, their level by the code's length.
NUMEROUS = (Level.GRID, Level.MICRO_GRID)


@dataclass(frozen=True)
class TileFilter:
    """Which units a view shows: all, those below `unit`, or these `grids` (and their micro-grids)."""

    unit: str | None = None
    grids: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Tile:
    """A generated tile: the MVT bytes, features per layer, and the layers left out as over budget."""

    data: bytes
    features: dict[str, int]
    omitted: tuple[str, ...] = ()


def tile_bounds_lonlat(z: int, x: int, y: int, margin: float = 0.0) -> tuple[float, float, float, float]:
    """The tile's (minlon, minlat, maxlon, maxlat) in the tile scheme's lon/lat, widened by `margin` tiles."""
    n = 2**z

    def lon(tx: float) -> float:
        return tx / n * 360.0 - 180.0

    def lat(ty: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * ty / n))))

    return lon(x - margin), lat(y + 1 + margin), lon(x + 1 + margin), lat(y - margin)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The (x, y) of the 256 px Web Mercator tile of zoom `z` holding a point (the inverse of the above)."""
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def _where(level: Level, f: TileFilter, band: int | None = None) -> tuple[list[str], dict[str, Any]]:
    params: dict[str, Any] = {"level": str(level), "code_length": CODE_LENGTH[level]}
    if band is not None:
        # unit_simplified: band, level and box in one index (migration 0017). The cast matters:
        # btree_gist compares smallint with smallint only, and a bound integer left the band out of
        # the index scan (every band's rows read, then dropped).
        where = ["v.band = CAST(:band AS smallint)", "v.level = :level"]
        params["band"] = band
    elif level in NUMEROUS:
        # Numerous: the spatial index picks them, the code's length (= the level) sorts them out;
        # a join with `units` would hash all 100,000 of them for every tile.
        where = ["length(v.code) = :code_length", valid_at_sql("v", None)]
    else:
        # Few: picked by level first, so a county-wide tile never reads 100,000 grid outlines
        # only to drop them.
        where = ["v.code IN (SELECT code FROM units WHERE level = :level)", valid_at_sql("v", None)]
    if f.grids is not None:
        # A grid's micro-grids carry its code as their prefix (15 digits of 18).
        where.append("left(v.code, 15) = ANY(:grids)")
        params["grids"] = list(f.grids)
    elif f.unit is not None:
        # The unit itself (its outline) and everything below it: codes nest by prefix.
        where.append("v.code LIKE :prefix")
        params["prefix"] = f.unit + "%"
    return where, params


def _over_budget(session: Session, where: list[str], params: dict[str, Any], source: str) -> bool:
    sql = f"""SELECT count(*) FROM (
                SELECT 1 FROM {source} v WHERE {" AND ".join(where)} AND {_in_box(source)}
                LIMIT :budget + 1) s"""
    return session.execute(text(sql), {**params, "budget": FEATURE_BUDGET}).scalar_one() > FEATURE_BUDGET


def unit_tile(
    session: Session,
    level: Level,
    z: int,
    x: int,
    y: int,
    f: TileFilter | None = None,
    *,
    gcj02: bool = False,
    simplified: bool = False,
) -> Tile:
    """One MVT tile of the current units of `level` (layer name = level), WGS84 or GCJ-02 Web Mercator;
    cut from the simplified outlines of the zoom's band if `simplified` (and WGS84, z <= 12)."""
    f = f or TileFilter()
    band = zoom_bands.band_of(z) if simplified and not gcj02 else None
    source = SIMPLIFIED if band is not None else STORED
    where, params = _where(level, f, band.number if band is not None else None)
    margin = BUFFER / EXTENT
    x0, y0, x1, y1 = tile_bounds_lonlat(z, x, y, margin)
    if gcj02:
        # Rows are selected in storage lon/lat: the GCJ-02 box moved back, padded for the shift's
        # variation across it (a few metres per kilometre; 0.001° ≈ 100 m is ample).
        wx, wy = crs.gcj02_to_wgs84([x0, x1], [y0, y1])
        x0, x1, y0, y1 = wx[0] - 0.001, wx[1] + 0.001, wy[0] - 0.001, wy[1] + 0.001
    params.update(x0=x0, y0=y0, x1=x1, y1=y1, z=z, x=x, y=y, layer=str(level), margin=margin)
    if not zoom_bands.drawn_at(level, z):
        return Tile(data=b"", features={str(level): 0})
    if level in zoom_bands.BUDGETED and _over_budget(session, where, params, source):
        return Tile(data=b"", features={str(level): 0}, omitted=(str(level),))
    columns = ", ".join(f"v.{c}" for c in PROPERTIES[level])
    names = ", ".join(PROPERTIES[level])
    rows = f"""SELECT {columns}, {{geom}} FROM {source} v WHERE {" AND ".join(where)} AND {_in_box(source)}"""
    if gcj02:
        rows, params = _shifted_rows(session, rows, params, PROPERTIES[level])
    else:
        rows = rows.format(geom="v.geom")
    # Storage lon/lat is CGCS2000, within a metre of WGS84 (docs/architecture.md): labelled 4326 it
    # goes to Web Mercator without a datum step. Simplified outlines are stored in Web Mercator.
    mercator = "geom" if source == SIMPLIFIED else "ST_Transform(ST_SetSRID(geom, 4326), 3857)"
    sql = f"""
        WITH rows AS ({rows}),
        mvt AS (
            SELECT {names}, ST_AsMVTGeom({mercator}, ST_TileEnvelope(:z, :x, :y), {EXTENT}, {BUFFER}, true)
                AS geom
            FROM rows)
        SELECT ST_AsMVT(mvt, :layer, {EXTENT}, 'geom' ORDER BY code) AS data, count(*) AS n
        FROM mvt WHERE geom IS NOT NULL"""
    # ORDER BY: the same units give the same bytes whatever plan PostgreSQL picks (a parallel scan
    # returns rows in any order), so a tile's ETag changes only when the tile does.
    row = session.execute(text(sql), params).one()
    return Tile(data=bytes(row.data or b""), features={str(level): row.n})


def _in_box(source: str) -> str:
    """The row's outline meets the tile with its buffer (in the source's CRS, for its GiST index)."""
    if source == SIMPLIFIED:
        return "v.geom && ST_TileEnvelope(:z, :x, :y, margin => :margin)"
    return "v.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490)"


def view_tile(
    session: Session,
    z: int,
    x: int,
    y: int,
    filters: dict[Level, TileFilter],
    *,
    gcj02: bool = False,
    simplified: bool = False,
) -> Tile:
    """One tile holding a layer per level in `filters` (MVT layers concatenate: one request, not five)."""
    parts = [
        unit_tile(session, level, z, x, y, f, gcj02=gcj02, simplified=simplified)
        for level, f in filters.items()
    ]
    return Tile(
        data=b"".join(p.data for p in parts),
        features={k: v for p in parts for k, v in p.features.items()},
        omitted=tuple(o for p in parts for o in p.omitted),
    )


def _shifted_rows(
    session: Session, rows_sql: str, params: dict[str, Any], names: tuple[str, ...]
) -> tuple[str, dict[str, Any]]:
    """The selected rows with geometries shifted to GCJ-02, as SQL over bound arrays."""
    found = session.execute(text(rows_sql.format(geom="ST_AsBinary(v.geom) AS wkb")), params).all()
    geoms = shapely.transform(from_wkb_array([r.wkb for r in found]), _to_gcj02) if found else []
    arrays = {name: [getattr(r, name) for r in found] for name in names}
    unnest = ", ".join(f"CAST(:arr_{n} AS text[])" for n in names)
    sql = f"""SELECT {", ".join(names)}, ST_GeomFromWKB(wkb) AS geom
              FROM unnest({unnest}, CAST(:arr_wkb AS bytea[])) AS t({", ".join(names)}, wkb)"""
    bound = {f"arr_{n}": arrays[n] for n in names}
    bound["arr_wkb"] = [shapely.to_wkb(g) for g in geoms]
    keep = {k: params[k] for k in ("z", "x", "y", "layer")}
    return sql, {**keep, **bound}


def _to_gcj02(xy: np.ndarray) -> np.ndarray:
    gx, gy = crs.wgs84_to_gcj02(xy[:, 0], xy[:, 1])
    return np.column_stack([gx, gy])
