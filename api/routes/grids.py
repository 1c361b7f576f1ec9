"""Grids and the units above them, as GeoJSON."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import AtDep, BboxDep, SessionDep
from api.errors import InvalidParameter, NotFound
from api.schemas.geojson import geojson_content
from api.schemas.units import UnitFeature, UnitVersion
from geo.codes import CodeError, GridKind, Level, level_of
from store import units

router = APIRouter(tags=["grids"])

GEOJSON = "application/geo+json"
MAX_FEATURES = 100_000


def _geojson(body: str, filename: str | None = None) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'} if filename else None
    return Response(body, media_type=GEOJSON, headers=headers)


@router.get("/grids", response_class=Response, responses=geojson_content())
def list_grids(
    session: SessionDep,
    at: AtDep,
    bbox: BboxDep,
    level: Annotated[Level | None, Query(description="Only this level (default: grids)")] = Level.GRID,
    kind: Annotated[GridKind | None, Query()] = None,
    parent: Annotated[str | None, Query(description="Only units below this unit code")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_FEATURES)] = MAX_FEATURES,
) -> Response:
    """Units of one level as a GeoJSON FeatureCollection, filtered by kind, parent, bbox and date."""
    if parent is not None:
        _check_code(parent, "parent")
    body = units.units_geojson(session, level=level, kind=kind, parent=parent, bbox=bbox, at=at, limit=limit)
    return _geojson(body)


@router.get("/grids/{code}", response_model=UnitFeature, responses={404: {"description": "No such unit"}})
def get_grid(code: str, session: SessionDep, at: AtDep) -> dict:
    """One unit (any level) with its parents, children count, staff and party-cell counts."""
    _check_code(code, "code", not_found=True)
    feature = units.unit_detail(session, code, at)
    if feature is None:
        when = f" on {at:%Y-%m-%d %H:%M}" if at else ""
        raise NotFound(f"no unit with code {code}{when}")
    return feature


@router.get(
    "/grids/{code}/versions",
    response_model=list[UnitVersion],
    responses={404: {"description": "No such unit"}},
)
def grid_versions(code: str, session: SessionDep) -> list[dict]:
    """Every version of a unit's boundary, oldest first: name, kind, validity and area in m²."""
    _check_code(code, "code", not_found=True)
    versions = units.versions_of(session, code)
    if not versions:
        raise NotFound(f"no unit with code {code}")
    return versions


@router.get("/export", response_class=Response, responses=geojson_content())
def export(session: SessionDep, at: AtDep, level: Annotated[Level, Query()] = Level.GRID) -> Response:
    """All units of one level as a downloadable GeoJSON file (EPSG:4490 lon/lat, declared as such)."""
    body = units.units_geojson(session, level=level, at=at, declare_crs=True)
    return _geojson(body, filename=f"{level}.geojson")


def _check_code(code: str, name: str, *, not_found: bool = False) -> None:
    try:
        level_of(code)
    except CodeError as exc:
        if not_found:
            raise NotFound(f"no unit with code {code!r}: {exc}") from None
        raise InvalidParameter(f"{name}: {exc}") from None
