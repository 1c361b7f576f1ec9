"""Places the tests ask about: a unit's bounding box, and points put in a temporary table."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def unit_bounds(session: Session, code: str) -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) of every stored version of the unit `code`."""
    row = session.execute(
        text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e "
            "FROM unit_versions WHERE code = :code) q"
        ),
        {"code": code},
    ).one()
    return tuple(row)  # type: ignore[return-value]


def points_table(session: Session, xy: list[tuple[float, float]]) -> None:
    """A temporary table `pts` (id, geom) of the points, ids in order."""
    session.execute(text("DROP TABLE IF EXISTS pts"))
    session.execute(text("CREATE TEMP TABLE pts (id bigint PRIMARY KEY, geom geometry(Point, 4490))"))
    session.execute(
        text("INSERT INTO pts VALUES (:id, ST_SetSRID(ST_MakePoint(:x, :y), 4490))"),
        [{"id": i, "x": x, "y": y} for i, (x, y) in enumerate(xy)],
    )
