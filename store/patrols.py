"""Patrols in the store: tracks with the grids they passed, who may read them, figures, retention."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from access.roles import User
from errors import NotFound
from geo import coverage, patrols
from geo.crs import METRES_PER_DEGREE_MIN, STORAGE_SRID
from store.cases import IdempotencyConflict


class PatrolNotFound(NotFound):
    """No such patrol (or none the caller may see)."""


@dataclass(frozen=True)
class NewPatrol:
    """A cleaned, thinned track ready to store."""

    username: str
    unit_code: str
    track: patrols.CleanTrack
    length_m: float
    key: str | None = None


PATROL_COLUMNS = """p.id, p.username, p.unit_code, p.started_at, p.ended_at, p.length_m, p.points, p.dropped,
    p.grids, p.created_at"""


def save(session: Session, new: NewPatrol) -> tuple[Any, bool]:
    """Store a patrol and the current grids its track passes: (row, created). A retry with the same
    key answers the patrol made earlier; the key of another worker's patrol is an IdempotencyConflict."""
    points = new.track.points
    row = session.execute(
        text(
            f"""WITH t AS (SELECT ST_GeomFromText(:wkt, {STORAGE_SRID}) AS g)
                INSERT INTO patrols AS p (idempotency_key, username, unit_code, started_at, ended_at,
                    length_m, points, dropped, track, grids)
                SELECT :key, :username, :unit, :started, :ended, :length, :n, CAST(:dropped AS jsonb), t.g,
                    ARRAY(SELECT DISTINCT u.code FROM unit_parts u
                          WHERE u.valid_to IS NULL AND u.level = 'grid' AND ST_Intersects(u.geom, t.g)
                          ORDER BY u.code)
                FROM t
                ON CONFLICT (idempotency_key) DO NOTHING
                RETURNING {PATROL_COLUMNS}"""
        ),
        {
            "wkt": patrols.line_of(points).wkt,
            "key": new.key,
            "username": new.username,
            "unit": new.unit_code,
            "started": points[0].t,
            "ended": points[-1].t,
            "length": new.length_m,
            "n": len(points),
            "dropped": json.dumps(dict(new.track.dropped)),
        },
    ).first()
    if row is not None:
        return row, True
    earlier = session.execute(
        text(f"SELECT {PATROL_COLUMNS} FROM patrols p WHERE p.idempotency_key = :key"), {"key": new.key}
    ).one()
    if earlier.username != new.username:
        raise IdempotencyConflict(f"Idempotency-Key {new.key} was used for another patrol; make a new key")
    return earlier, False


def scope_sql(viewer: User) -> tuple[str, dict[str, Any]]:
    """SQL for access.roles.User.may_see_patrol on patrol `p`."""
    if viewer.supervises_patrols():
        return "(p.username = :me OR p.unit_code LIKE :prefix)", {
            "me": viewer.username,
            "prefix": viewer.unit_code + "%",
        }
    return "p.username = :me", {"me": viewer.username}


def list_patrols(
    session: Session,
    viewer: User,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    worker: str | None = None,
    grid: str | None = None,
    limit: int = 500,
) -> list[Any]:
    """The patrols the viewer may see, newest first, with their tracks as GeoJSON."""
    where, params = scope_sql(viewer)
    conditions = [where]
    if since is not None:
        conditions.append("p.ended_at >= :since")
        params["since"] = since
    if until is not None:
        conditions.append("p.started_at < :until")
        params["until"] = until
    if worker is not None:
        conditions.append("p.username = :worker")
        params["worker"] = worker
    if grid is not None:
        conditions.append(":grid = ANY(p.grids)")
        params["grid"] = grid
    return session.execute(
        text(
            f"""SELECT {PATROL_COLUMNS}, ST_AsBinary(p.track) AS wkb FROM patrols p
                WHERE {" AND ".join(conditions)} ORDER BY p.started_at DESC, p.id DESC LIMIT :limit"""
        ),
        {**params, "limit": limit},
    ).all()


@dataclass(frozen=True)
class GridPatrols:
    """A current grid's outline and the tracks that came within reach of it in a period."""

    area: shapely.Geometry
    tracks: list[shapely.Geometry]
    passed: int  # of those, the patrols that recorded passing through the grid


def grid_patrols(
    session: Session, grid: str, since: datetime, until: datetime, distance_m: float
) -> GridPatrols:
    """The grid's outline and the tracks of the period within `distance_m` of it (storage lon/lat)."""
    area = session.execute(
        text("SELECT ST_AsBinary(geom) FROM unit_versions WHERE code = :grid AND valid_to IS NULL"),
        {"grid": grid},
    ).scalar()
    if area is None:
        raise PatrolNotFound(f"no current grid {grid}")
    rows = session.execute(
        text(
            """SELECT ST_AsBinary(p.track) AS track, :grid = ANY(p.grids) AS passed FROM patrols p
                WHERE p.ended_at >= :since AND p.started_at < :until
                  AND ST_DWithin(p.track, (SELECT geom FROM unit_versions
                                           WHERE code = :grid AND valid_to IS NULL), :reach_deg)"""
        ),
        {"grid": grid, "since": since, "until": until, "reach_deg": distance_m / METRES_PER_DEGREE_MIN},
    ).all()
    tracks = [shapely.from_wkb(bytes(r.track)) for r in rows]
    return GridPatrols(shapely.from_wkb(bytes(area)), tracks, sum(1 for r in rows if r.passed))


def last_patrolled(session: Session, unit: str) -> dict[str, datetime | None]:
    """Every current grid under a unit and the end of its latest patrol (None: never patrolled)."""
    rows = session.execute(
        text(
            """SELECT u.code, (SELECT max(p.ended_at) FROM patrols p WHERE u.code = ANY(p.grids)) AS last
               FROM units u JOIN unit_versions v ON v.code = u.code AND v.valid_to IS NULL
               WHERE u.level = 'grid' AND u.code LIKE :prefix"""
        ),
        {"prefix": unit + "%"},
    ).all()
    return {r.code: r.last for r in rows}


def delete_expired(session: Session, retention_days: int, now: datetime | None = None) -> int:
    """Delete the tracks that ended more than `retention_days` ago; how many."""
    now = now or session.execute(text("SELECT now()")).scalar_one()
    return session.execute(
        text("DELETE FROM patrols WHERE ended_at < :limit"), {"limit": now - timedelta(days=retention_days)}
    ).rowcount


def stale_grid_findings(session: Session, unit: str, days: int) -> list[coverage.Finding]:
    """Coverage findings for the grids under a unit that no patrol passed in `days` days; none where
    no patrol was ever recorded under the unit (patrols are not tracked there)."""
    last = last_patrolled(session, unit)
    if not any(last.values()):
        return []
    now = session.execute(text("SELECT now()")).scalar_one()
    return [
        coverage.Finding(
            coverage.Kind.NOT_PATROLLED,
            (code,),
            None,
            None,
            {"days": days, "last_patrol": last[code].isoformat() if last[code] else None},
        )
        for code in patrols.not_patrolled(last, now, days)
    ]
