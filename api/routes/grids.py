"""Grids and the units above them, as GeoJSON."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from api.deps import AtDep, BboxDep, SessionDep
from api.errors import InvalidParameter, NotFound
from api.geojson import GeoJSONResponse
from api.schemas.geojson import FeatureCollection, geojson_content
from api.schemas.units import UnitFeature, UnitVersion
from geo.codes import CodeError, GridKind, Level, level_of
from services import units as unit_service

router = APIRouter(tags=["grids"])

MAX_FEATURES = 100_000
ExportFormat = Literal["geojson", "gpkg"]
# The download's two media types: GeoJSON documented by its model, a GeoPackage as a binary file.
EXPORT_CONTENT = geojson_content()
EXPORT_CONTENT[200]["content"][unit_service.MEDIA_TYPES["gpkg"]] = {
    "schema": {"type": "string", "format": "binary"}
}


@router.get("/grids", response_class=GeoJSONResponse, response_model=FeatureCollection)
def list_grids(
    session: SessionDep,
    at: AtDep,
    bbox: BboxDep,
    level: Annotated[Level | None, Query(description="Only this level (default: grids)")] = Level.GRID,
    kind: Annotated[GridKind | None, Query()] = None,
    parent: Annotated[str | None, Query(description="Only units below this unit code")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_FEATURES)] = MAX_FEATURES,
) -> Any:
    """Units of one level as a GeoJSON FeatureCollection, filtered by kind, parent, bbox and date."""
    if parent is not None:
        _check_code(parent, "parent")
    return unit_service.units_collection(
        session, level=level, kind=kind, parent=parent, bbox=bbox, at=at, limit=limit
    )


@router.get(
    "/grids/{code}",
    response_class=GeoJSONResponse,
    response_model=UnitFeature,
    responses={404: {"description": "No such unit"}},
)
def get_grid(code: str, session: SessionDep, at: AtDep) -> Any:
    """One unit (any level) as a GeoJSON Feature with its parents, children count, staff and party cells."""
    _check_code(code, "code", not_found=True)
    feature = unit_service.unit_detail_feature(session, code, at)
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
    versions = unit_service.versions_of(session, code)
    if not versions:
        raise NotFound(f"no unit with code {code}")
    return versions


@router.get(
    "/export",
    response_class=Response,
    responses=EXPORT_CONTENT,
)
def export(
    session: SessionDep,
    at: AtDep,
    level: Annotated[Level, Query()] = Level.GRID,
    format: Annotated[ExportFormat, Query(description="geojson or gpkg (GeoPackage)")] = "geojson",
) -> Response:
    """All units of one level as a downloadable file (EPSG:4490 lon/lat, declared as such)."""
    body = unit_service.export_bytes(session, level, format, at)
    headers = {"Content-Disposition": f'attachment; filename="{level}.{format}"'}
    return Response(body, media_type=unit_service.MEDIA_TYPES[format], headers=headers)


def _check_code(code: str, name: str, *, not_found: bool = False) -> None:
    try:
        level_of(code)
    except CodeError as exc:
        if not_found:
            raise NotFound(f"no unit with code {code!r}: {exc}") from None
        raise InvalidParameter(f"{name}: {exc}") from None
