"""Patrols (巡查): a worker's upload (cleaned, thinned, stored, audited), the tracks a viewer may
see (someone else's views audited), a grid's patrol figure, and the expiry of old tracks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from access.roles import User
from cases.periods import period_of
from cases.worktime import SHANGHAI
from geo import geojson, patrols
from geo.settings import Settings
from store import patrols as store
from store import users
from store.geometry import from_wkb

UPLOAD_AUDIT = "patrol_upload"  # the audit log's action when a worker stores a patrol
VIEW_AUDIT = "patrol_view"  # ... and when someone sees another worker's tracks
FIGURE_PERIOD = timedelta(days=7)  # a grid's figure without dates: the last 7 days


def limits_of(settings: Settings) -> patrols.Limits:
    """The plausibility and thinning limits from the settings."""
    return patrols.Limits(
        max_speed_mps=settings.patrol_max_speed_mps,
        max_accuracy_m=settings.patrol_max_accuracy_m,
        min_step_m=settings.patrol_min_step_m,
    )


def record_patrol(
    session: Session,
    worker: User,
    points: list[patrols.TrackPoint],
    settings: Settings,
    *,
    key: str | None = None,
    now: datetime | None = None,
    ip: str | None = None,
) -> tuple[Any, bool]:
    """Store a worker's patrol: implausible points dropped and counted, the rest thinned; (row,
    created). A retry with the same key answers the patrol made earlier. A new patrol is audited."""
    limits = limits_of(settings)
    cleaned = patrols.clean(points, now or datetime.now(SHANGHAI), limits)
    cleaned.points = patrols.thin(cleaned.points, limits)
    new = store.NewPatrol(
        username=worker.username,
        unit_code=worker.unit_code,
        track=cleaned,
        length_m=patrols.length_m(cleaned.points),
        key=key,
    )
    row, created = store.save(session, new)
    if created:
        details = {"points": row.points, "grids": list(row.grids)}
        users.audit(session, worker.username, UPLOAD_AUDIT, f"patrol {row.id}", details, ip)
    return row, created


@dataclass(frozen=True)
class SeenPatrol:
    """A stored patrol and its track as a GeoJSON geometry."""

    row: Any
    geometry: dict[str, Any] | None


def patrols_seen(
    session: Session,
    viewer: User,
    *,
    day: date | None = None,
    worker: str | None = None,
    grid: str | None = None,
    limit: int = 500,
    ip: str | None = None,
) -> list[SeenPatrol]:
    """The patrols the viewer may see (their own; a supervisor's workers'), newest first, of a day
    (China time), worker or grid; seeing someone else's movements is recorded in the audit log."""
    since = datetime.combine(day, datetime.min.time(), SHANGHAI) if day else None
    until = since + timedelta(days=1) if since else None
    found = {"since": since, "until": until, "worker": worker, "grid": grid, "limit": limit}
    rows = store.list_patrols(session, viewer, **found)
    others = [r for r in rows if r.username != viewer.username]
    if others:
        details = {"patrols": [r.id for r in others], "workers": sorted({r.username for r in others})}
        users.audit(session, viewer.username, VIEW_AUDIT, "patrols", details, ip)
    return [SeenPatrol(r, geojson.geometry(from_wkb(r.wkb))) for r in rows]


def grid_figure(
    session: Session,
    grid: str,
    start: datetime | None,
    end: datetime | None,
    settings: Settings,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A grid's patrol figure over [start, end) (default: the last 7 days): patrols per week and
    巡查覆盖率 (no one's track shown)."""  # fmt: skip
    since, until = period_of(start, end, now or datetime.now(SHANGHAI), FIGURE_PERIOD)
    reach = settings.patrol_coverage_distance_m
    near = store.grid_patrols(session, grid, since, until, reach)
    figure = patrols.grid_figure(near.area, near.tracks, near.passed, since, until, reach)
    return {"grid": grid, "since": since, "until": until, "distance_m": reach, **figure}


def expire(session: Session, retention_days: int) -> int:
    """Delete patrol tracks older than the retention period; how many were deleted."""
    return store.delete_expired(session, retention_days)
