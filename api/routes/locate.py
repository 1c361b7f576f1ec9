"""Point → responsible grid."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AtDep, SessionDep, SettingsDep
from geo import crs
from geo.assignment import Assignment
from geo.db.locate import locate

router = APIRouter(tags=["assignment"])


@router.get("/locate", response_model=Assignment)
def locate_point(
    session: SessionDep,
    settings: SettingsDep,
    at: AtDep,
    lon: Annotated[float, Query(description="Longitude (or easting) in `crs`")],
    lat: Annotated[float, Query(description="Latitude (or northing) in `crs`")],
    crs_name: Annotated[
        str, Query(alias="crs", description="wgs84 (default), gcj02, bd09, cgcs2000 or EPSG:n")
    ] = crs.WGS84,
) -> Assignment:
    """Which grid is responsible for a point, with the rule applied, the distance and the parent units."""
    x, y = crs.to_storage([lon], [lat], crs_name)
    crs.check_plausible(x, y)
    return locate(session, float(x[0]), float(y[0]), tolerance_m=settings.snap_tolerance_m, at=at)
