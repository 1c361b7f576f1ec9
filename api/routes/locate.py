"""Point → responsible grid."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from api.deps import AtDep, SettingsDep, request_session
from geo import crs
from geo.assignment import Assignment
from store.locate import locate

router = APIRouter(tags=["assignment"])


@router.get("/locate", response_model=Assignment)
async def locate_point(
    request: Request,
    settings: SettingsDep,
    at: AtDep,
    lon: Annotated[float, Query(description="Longitude (or easting) in `crs`")],
    lat: Annotated[float, Query(description="Latitude (or northing) in `crs`")],
    crs_name: Annotated[
        str, Query(alias="crs", description="wgs84 (default), gcj02, bd09, cgcs2000 or EPSG:n")
    ] = crs.WGS84,
) -> Assignment:
    """Which grid is responsible for a point, with the rule applied, the distance and the parent units."""
    point = crs.point_to_storage(lon, lat, crs_name)
    # A current lookup of a covered point is answered from memory when the app keeps a copy of
    # the grids (store.locate_cache); everything else asks PostGIS, off the event loop.
    cache = getattr(request.app.state, "locate_cache", None)
    answer = cache.locate(*point) if cache is not None and at is None else None
    if answer is None:
        answer = await run_in_threadpool(_locate_in_postgis, request, point, settings.snap_tolerance_m, at)
    return answer


def _locate_in_postgis(
    request: Request, point: tuple[float, float], tolerance_m: float, at: datetime | None
) -> Assignment:
    with request_session(request) as session:
        return locate(session, *point, tolerance_m=tolerance_m, at=at)
