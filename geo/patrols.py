"""Patrols (巡查): cleaning a recorded track, thinning it, its length, and the grid's patrol figure.

A phone records a position every few seconds with its accuracy. Before a track is stored, points
that cannot be right are dropped and counted by reason (the answer says how many of each): outside
China, timestamps in the future, out of time order, too inaccurate to place, and points that
would mean an impossible speed from the last kept point. A track left with fewer than two points
is refused. Thinning keeps a point only when it moved far enough from the last kept one (or
enough time passed): the phone does it before queueing (the same rule in tasks/patrol.js) and the
service does it again, so a track from any client is stored at the same density.

Coverage (巡查覆盖率): the share of a grid's area within `distance_m` of any track of the period,
computed in a metric CRS (geo.crs).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import shapely
from pyproj import Geod

from errors import Invalid
from geo import crs
from geo.crs import CHINA_BOUNDS

GEOD = Geod(ellps="GRS80")  # CGCS2000's ellipsoid: geodesic metres on storage lon/lat
CLOCK_SKEW = timedelta(minutes=2)  # a phone's clock may run this far ahead of the server's


@dataclass(frozen=True)
class TrackPoint:
    """One recorded position: when, where (storage lon/lat), and the phone's accuracy radius."""

    t: datetime
    lon: float
    lat: float
    accuracy_m: float | None = None


@dataclass(frozen=True)
class Limits:
    """What a plausible track is (settings: GRIDMAP_PATROL_*)."""

    max_speed_mps: float = 40.0  # faster than a car in town: a GPS jump
    max_accuracy_m: float = 200.0  # a fix this vague places nothing
    min_step_m: float = 10.0  # thinning: closer points add nothing to the line
    max_gap_s: float = 60.0  # ... unless this long passed (a worker standing still)


@dataclass
class CleanTrack:
    """The points kept, in time order, and how many were dropped for which reason."""

    points: list[TrackPoint]
    dropped: Counter[str] = field(default_factory=Counter)


class PatrolRejected(Invalid):
    """A track that cannot be stored; the message says why."""


def step_metres(a: TrackPoint, b: TrackPoint) -> float:
    """Geodesic distance between two points in metres."""
    return float(GEOD.inv(a.lon, a.lat, b.lon, b.lat)[2])


def _in_china(p: TrackPoint) -> bool:
    minx, miny, maxx, maxy = CHINA_BOUNDS
    return bool(np.isfinite(p.lon) and np.isfinite(p.lat) and minx <= p.lon <= maxx and miny <= p.lat <= maxy)


def _reason_to_drop(p: TrackPoint, last: TrackPoint | None, now: datetime, limits: Limits) -> str | None:
    if not _in_china(p):
        return "outside_china"
    if p.t > now + CLOCK_SKEW:
        return "future"
    if p.accuracy_m is not None and p.accuracy_m > limits.max_accuracy_m:
        return "inaccurate"
    if last is None:
        return None
    seconds = (p.t - last.t).total_seconds()
    if seconds < 0:
        return "out_of_order"
    if seconds == 0:
        return "duplicate_time" if step_metres(last, p) > 0 else "duplicate"
    if step_metres(last, p) / seconds > limits.max_speed_mps:
        return "too_fast"
    return None


def clean(points: Iterable[TrackPoint], now: datetime, limits: Limits = Limits()) -> CleanTrack:
    """Drop (and count) the points that cannot be right; refuse a track left with fewer than two."""
    kept: list[TrackPoint] = []
    dropped: Counter[str] = Counter()
    for p in points:
        reason = _reason_to_drop(p, kept[-1] if kept else None, now, limits)
        if reason:
            dropped[reason] += 1
        else:
            kept.append(p)
    if len(kept) < 2:
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(dropped.items())) or "none dropped"
        raise PatrolRejected(f"a patrol needs at least two plausible points; {len(kept)} left ({reasons})")
    return CleanTrack(kept, dropped)


def thin(points: Sequence[TrackPoint], limits: Limits = Limits()) -> list[TrackPoint]:
    """Keep a point when it is `min_step_m` from the last kept one or `max_gap_s` after it; the last
    point is always kept (the patrol's end)."""
    if len(points) <= 2:
        return list(points)
    kept = [points[0]]
    for p in points[1:-1]:
        last = kept[-1]
        if step_metres(last, p) >= limits.min_step_m or (p.t - last.t).total_seconds() >= limits.max_gap_s:
            kept.append(p)
    kept.append(points[-1])
    return kept


def length_m(points: Sequence[TrackPoint]) -> float:
    """The track's geodesic length in metres."""
    if len(points) < 2:
        return 0.0
    lons = np.array([p.lon for p in points])
    lats = np.array([p.lat for p in points])
    return float(np.sum(GEOD.inv(lons[:-1], lats[:-1], lons[1:], lats[1:])[2]))


def line_of(points: Sequence[TrackPoint]) -> shapely.LineString:
    """The track as a storage lon/lat LineString."""
    return shapely.LineString([(p.lon, p.lat) for p in points])


def coverage_share(
    area: shapely.Geometry, tracks: Sequence[shapely.Geometry], distance_m: float, samples: int = 10_000
) -> float:
    """巡查覆盖率: the share (0-1) of `area` within `distance_m` of any track; all in one metric CRS.

    Measured on a regular lattice of about `samples` points over the area's box (the points inside
    the area, and which of them lie within reach of a track): a 4-hour walk that crosses itself
    took 0.6-1.1 s to buffer exactly (GEOS), its lattice figure 0.08 s, the two within 0.1 % of
    the area of each other. The lattice's spacing bounds the error: it is at most one spacing wide
    along the edge of the reach (with 10,000 points, 1 % of the side of a square grid).
    """
    if area.is_empty or area.area <= 0 or not tracks:
        return 0.0
    minx, miny, maxx, maxy = area.bounds
    step = max(((maxx - minx) * (maxy - miny) / samples) ** 0.5, 1e-6)
    xs, ys = np.meshgrid(np.arange(minx + step / 2, maxx, step), np.arange(miny + step / 2, maxy, step))
    xs, ys = xs.ravel(), ys.ravel()
    inside = shapely.contains_xy(area, xs, ys)
    if not inside.any():
        return 0.0
    reach = shapely.GeometryCollection(list(tracks))  # no noding: only distances are asked
    shapely.prepare(reach)
    near = shapely.dwithin(reach, shapely.points(xs[inside], ys[inside]), distance_m)
    return float(np.count_nonzero(near) / np.count_nonzero(inside))


def per_week(patrols: int, since: datetime, until: datetime) -> float:
    """Patrols per week over a period."""
    days = max((until - since).total_seconds() / 86400, 1e-9)
    return patrols * 7 / days


def not_patrolled(last: dict[str, datetime | None], now: datetime, days: int) -> list[str]:
    """The grids (codes) with no patrol in the last `days` days, in code order."""
    limit = now - timedelta(days=days)
    return sorted(code for code, at in last.items() if at is None or at < limit)


def grid_figure(
    area: shapely.Geometry,
    tracks: Sequence[shapely.Geometry],
    passed: int,
    since: datetime,
    until: datetime,
    distance_m: float,
) -> dict[str, float | int]:
    """A grid's patrol figure from its outline and the tracks near it (lon/lat): patrols that passed
    it, per week, and 巡查覆盖率 within `distance_m`, measured in the grid's own metric CRS."""  # fmt: skip
    metric = crs.metric_crs_of(area)
    reach = [crs.to_metric(t, metric) for t in tracks]
    return {
        "patrols": passed,
        "patrols_per_week": round(per_week(passed, since, until), 2),
        "coverage_share": round(coverage_share(crs.to_metric(area, metric), reach, distance_m), 4),
    }
