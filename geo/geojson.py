"""The one GeoJSON writer: every Feature and FeatureCollection the service writes is made here.

RFC 7946 as readers expect it: positions are storage lon/lat (EPSG:4490, within a metre of the
WGS84 that GeoJSON assumes) rounded to `crs.GEOJSON_DECIMALS` (about 1 cm: the one precision
rule), polygons wind right-handed (exteriors counter-clockwise, holes clockwise) whatever the
source's winding, and a FeatureCollection served over HTTP is `application/geo+json`.
Deliberately coarser positions (a central household shown to ~100 m) are the one exception, and
they can only be coarser, never finer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import shapely

from geo.crs import GEOJSON_DECIMALS, STORAGE_SRID, geojson_rounded

MEDIA_TYPE = "application/geo+json"
# A GeoPackage download (OGC GeoPackage 1.3, IANA-registered).
GEOPACKAGE_MEDIA_TYPE = "application/geopackage+sqlite3"
DECIMALS = GEOJSON_DECIMALS


def coordinate(value: float | None, decimals: int = DECIMALS) -> float | None:
    """One lon or lat as GeoJSON answers give it (None stays None); `decimals` may only coarsen."""
    if value is None:
        return None
    return round(float(value), min(decimals, DECIMALS))


def position(lon: float, lat: float, decimals: int = DECIMALS) -> list[float]:
    """A GeoJSON position [lon, lat], rounded by the one rule (or coarser)."""
    return [coordinate(lon, decimals), coordinate(lat, decimals)]  # type: ignore[list-item]


def point(lon: float | None, lat: float | None, decimals: int = DECIMALS) -> dict[str, Any] | None:
    """A GeoJSON Point (None when the place is unknown)."""
    if lon is None or lat is None:
        return None
    return {"type": "Point", "coordinates": position(lon, lat, decimals)}


def geometry(value: shapely.Geometry | None) -> dict[str, Any] | None:
    """A shapely geometry as a GeoJSON geometry: right-hand winding, rounded (empty: None)."""
    return geometries([value])[0]


def geometries(values: Sequence[shapely.Geometry | None]) -> list[dict[str, Any] | None]:
    """Many geometries as `geometry` writes one, at once: GEOS writes the text and json reads it,
    faster than shapely's mapping() one by one (benchmarks/bench_geojson.py: a county's grids)."""
    array = np.array(values, dtype=object)
    missing = shapely.is_missing(array) | shapely.is_empty(array)
    if missing.all():
        return [None] * len(values)
    written = shapely.to_geojson(geojson_rounded(np.where(missing, None, array)))
    return [None if m else json.loads(text) for m, text in zip(missing, written, strict=True)]


def feature(
    geom: shapely.Geometry | dict[str, Any] | None,
    properties: Mapping[str, Any] | None,
    id: str | int | None = None,
) -> dict[str, Any]:
    """A GeoJSON Feature; a shapely geometry is written by `geometry`, a dict must come from here."""
    written = geom if geom is None or isinstance(geom, dict) else geometry(geom)
    out: dict[str, Any] = {"type": "Feature"}
    if id is not None:
        out["id"] = id
    out["geometry"] = written
    out["properties"] = dict(properties) if properties is not None else None
    return out


def point_feature(
    item: Mapping[str, Any], id: str | int | None = None, lon: str = "lon", lat: str = "lat"
) -> dict[str, Any]:
    """A JSON object with `lon`/`lat` members as a Point Feature; its other members are the properties."""
    properties = {k: v for k, v in item.items() if k not in (lon, lat)}
    return feature(point(item.get(lon), item.get(lat)), properties, id=id)


def feature_collection(features: Iterable[dict[str, Any]], **members: Any) -> dict[str, Any]:
    """A GeoJSON FeatureCollection; `members` are foreign members (a total, notes) before the features."""
    return {"type": "FeatureCollection", **members, "features": list(features)}


def with_position(item: Mapping[str, Any], lon: str = "lon", lat: str = "lat") -> dict[str, Any]:
    """A JSON object whose `lon`/`lat` members are rounded as its GeoJSON twin's position is."""
    out = dict(item)
    for key in (lon, lat):
        if key in out:
            out[key] = coordinate(out[key])
    return out


# How a download names its CRS: the OGC URN that GDAL and geo.importer both recognise. The
# pre-RFC 7946 "crs" member, for files only (answers carry none: RFC 7946 §4).
DECLARED_CRS = f"urn:ogc:def:crs:EPSG::{STORAGE_SRID}"


def crs_member() -> dict[str, Any]:
    """The "crs" member a downloaded file declares EPSG:4490 with."""
    return {"type": "name", "properties": {"name": DECLARED_CRS}}


def dumps(document: Mapping[str, Any]) -> str:
    """GeoJSON text (UTF-8 names as they are; dates as ISO 8601)."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
