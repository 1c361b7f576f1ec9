"""The one crossing between database geometry and shapely: WKB both ways, in the storage SRID."""

from __future__ import annotations

import numpy as np
import shapely

from geo.crs import STORAGE_SRID


def to_wkb(geometry: shapely.Geometry) -> bytes:
    """Plain 2D WKB for a storage geometry (the SRID is added in SQL)."""
    return shapely.to_wkb(geometry, output_dimension=2)


def to_wkb_array(geometries: list[shapely.Geometry]) -> list[bytes]:
    """Many geometries as plain 2D WKB at once (vectorised)."""
    return shapely.to_wkb(np.array(geometries, dtype=object), output_dimension=2).tolist()


def to_ewkb_hex_array(geometries: list[shapely.Geometry]) -> list[str]:
    """Many geometries as 2D hex EWKB with the storage SRID, as COPY's text format takes a geometry."""
    tagged = shapely.set_srid(np.array(geometries, dtype=object), STORAGE_SRID)
    return shapely.to_wkb(tagged, output_dimension=2, hex=True, include_srid=True).tolist()


def from_wkb(data: bytes | memoryview | None) -> shapely.Geometry | None:
    """A shapely geometry from (E)WKB returned by ST_AsBinary / ST_AsEWKB."""
    return None if data is None else shapely.from_wkb(bytes(data))


def from_wkb_array(rows: list[bytes | memoryview]) -> np.ndarray:
    """Many geometries at once (vectorised)."""
    return shapely.from_wkb(np.array([bytes(r) for r in rows], dtype=object))


GEOM_FROM_WKB_SQL = f"ST_GeomFromWKB(CAST(:{{name}} AS bytea), {STORAGE_SRID})"


def geom_sql(name: str) -> str:
    """SQL text for a bound WKB parameter `name` as a storage geometry."""
    return GEOM_FROM_WKB_SQL.format(name=name)

