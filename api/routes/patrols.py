"""Patrols (巡查): a field worker uploads a recorded track; supervisors read tracks and grid figures.

Tracks are personal data: a worker sees their own, dispatchers and admins those of workers in
their unit (access.roles.User.may_see_patrol), and every view of someone else's track is audited.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.access import CurrentUser, client_address
from api.deps import SessionDep, SettingsDep, parse_at
from api.errors import InvalidParameter
from api.geojson import GeoJSONResponse
from api.reports import REPLAYED, idempotency_key_of
from api.schemas.geojson import Geometry
from geo import crs, patrols
from geo.codes import GRID_PATTERN
from services import patrols as service

router = APIRouter(tags=["patrols"])

Finite = Annotated[float, Field(allow_inf_nan=False)]


class PointIn(BaseModel):
    """One recorded position."""

    model_config = ConfigDict(extra="forbid")
    t: AwareDatetime = Field(description="When, with its time zone (ISO 8601)")
    lon: Finite
    lat: Finite
    accuracy_m: float | None = Field(None, ge=0, le=100_000, description="The phone's accuracy radius")


class PatrolIn(BaseModel):
    """A patrol as the phone uploads it: its points in time order."""

    model_config = ConfigDict(extra="forbid")
    crs: str = Field(crs.WGS84, description="Coordinates of the points: wgs84 (phones), gcj02, cgcs2000")
    points: list[PointIn] = Field(min_length=2)


class PatrolOut(BaseModel):
    """A stored patrol: when, how long, which grids it passed, and what was dropped from it."""

    id: int
    username: str
    unit_code: str
    started_at: datetime
    ended_at: datetime
    length_m: float
    received: int | None = Field(None, description="Points sent (on upload)")
    points: int = Field(description="Points stored after cleaning and thinning")
    dropped: dict[str, int] = Field(
        description="Points dropped, by reason: outside_china, future, too_fast, …"
    )
    grids: list[str]


class PatrolFeature(BaseModel):
    """A patrol as a GeoJSON Feature (LineString in EPSG:4490 lon/lat)."""

    type: str = "Feature"
    id: int
    geometry: Geometry | None
    properties: PatrolOut


class PatrolCollection(BaseModel):
    """Patrol tracks as a GeoJSON FeatureCollection."""

    type: str = "FeatureCollection"
    features: list[PatrolFeature]


class PatrolFigure(BaseModel):
    """A grid's patrol figure over a period."""

    grid: str
    since: datetime
    until: datetime
    distance_m: float
    patrols: int
    patrols_per_week: float
    coverage_share: float = Field(description="巡查覆盖率: share of the grid's area near a track, 0-1")


def _out(row: Any, received: int | None = None) -> PatrolOut:
    return PatrolOut(
        id=row.id, username=row.username, unit_code=row.unit_code, started_at=row.started_at,
        ended_at=row.ended_at, length_m=round(row.length_m, 1), received=received, points=row.points,
        dropped=row.dropped, grids=list(row.grids),
    )  # fmt: skip


def _track_points(body: PatrolIn) -> list[patrols.TrackPoint]:
    lons = np.array([p.lon for p in body.points])
    lats = np.array([p.lat for p in body.points])
    inside = (lons >= -180) & (lons <= 180) & (lats >= -90) & (lats <= 90)
    x, y = lons.copy(), lats.copy()
    if inside.any():  # points off the globe stay as sent: cleaning drops them as outside China
        x[inside], y[inside] = crs.to_storage(lons[inside], lats[inside], crs.normalize_crs(body.crs))
    return [
        patrols.TrackPoint(p.t, float(a), float(b), p.accuracy_m)
        for p, a, b in zip(body.points, x, y, strict=True)
    ]


@router.post(
    "/patrols", status_code=201, response_model=PatrolOut, responses={200: {"description": "A retry"}}
)
def post_patrol(
    body: PatrolIn,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    user: CurrentUser,
    idempotency_key: Annotated[str | None, Header(description="A UUID per patrol; a retry reuses it")] = None,
) -> PatrolOut:
    """Upload a recorded patrol: implausible points are dropped and counted, the rest thinned and stored."""
    assert user is not None
    if len(body.points) > settings.patrol_max_points:
        raise InvalidParameter(
            f"at most {settings.patrol_max_points} points per patrol, not {len(body.points)}"
        )
    key = idempotency_key_of(idempotency_key)
    row, created = service.record_patrol(
        session, user, _track_points(body), settings, key=key, ip=client_address(request)
    )
    session.commit()
    if not created:
        response.status_code = 200
        response.headers.update(REPLAYED)
    return _out(row, len(body.points))


@router.get("/patrols", response_model=PatrolCollection, response_class=GeoJSONResponse)
def get_patrols(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    day: Annotated[date | None, Query(description="A day (China time)")] = None,
    worker: Annotated[str | None, Query(max_length=64)] = None,
    grid: Annotated[str | None, Query(pattern=GRID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 500,
) -> PatrolCollection:
    """Patrol tracks the caller may see (their own; a supervisor's workers'), by day, worker, grid."""
    assert user is not None
    seen = service.patrols_seen(
        session, user, day=day, worker=worker, grid=grid, limit=limit, ip=client_address(request)
    )
    session.commit()  # the audit entry of someone else's tracks seen, if any
    return PatrolCollection(
        features=[PatrolFeature(id=p.row.id, geometry=p.geometry, properties=_out(p.row)) for p in seen]
    )


@router.get("/patrols/coverage/{code}", response_model=PatrolFigure)
def patrol_coverage(
    code: str,
    session: SessionDep,
    settings: SettingsDep,
    start: Annotated[
        str | None, Query(alias="from", description="Date or ISO datetime (default: 7 days ago)")
    ] = None,
    end: Annotated[str | None, Query(alias="to", description="Date or ISO datetime (default: now)")] = None,
) -> PatrolFigure:
    """A grid's patrol figure: patrols per week and 巡查覆盖率 over a period (no one's track shown)."""
    return PatrolFigure(**service.grid_figure(session, code, parse_at(start), parse_at(end), settings))
