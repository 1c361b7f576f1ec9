"""Label points of the units in a view: where the map writes a unit's name, and how wide the unit is.

The page draws a name only where it fits inside its unit at the current zoom (gridmap's labels.js
compares the unit's extent in pixels with the name's width), so the server just says where and how
wide; the largest units come first, so a cut-off list keeps the ones most likely to fit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from store.units import valid_at_sql

CURRENT = valid_at_sql("v", None)
LABEL_LEVELS = ("street", "community", "grid")
MAX_LABELS = 400


def unit_labels(
    session: Session, bbox: tuple[float, float, float, float], levels: list[str], limit: int = MAX_LABELS
) -> list[dict[str, Any]]:
    """Current units of `levels` meeting `bbox` (lon/lat): code, name, level, label point, extent."""
    rows = session.execute(
        text(
            f"""SELECT v.code, v.name, u.level, ST_X(p.pt) AS lon, ST_Y(p.pt) AS lat,
                       ST_XMin(v.geom) AS minx, ST_YMin(v.geom) AS miny,
                       ST_XMax(v.geom) AS maxx, ST_YMax(v.geom) AS maxy
                FROM unit_versions v JOIN units u USING (code)
                CROSS JOIN LATERAL (SELECT ST_PointOnSurface(v.geom) AS pt) p
                WHERE u.level = ANY(:levels) AND {CURRENT}
                  AND v.geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4490)
                ORDER BY (ST_XMax(v.geom) - ST_XMin(v.geom)) DESC, v.code
                LIMIT :limit"""
        ),
        {"levels": levels, "limit": limit, **dict(zip(("minx", "miny", "maxx", "maxy"), bbox, strict=True))},
    )
    return [_label(r) for r in rows]


def _label(r: Any) -> dict[str, Any]:
    return {
        "code": r.code, "name": r.name, "level": r.level, "lon": r.lon, "lat": r.lat,
        "bbox": [r.minx, r.miny, r.maxx, r.maxy],
    }  # fmt: skip
