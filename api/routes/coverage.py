"""Coverage analysis of a unit's subtree, and its stored reports (issue 4 §1)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from api.deps import ActorDep, AtDep, SessionDep, SettingsDep
from api.errors import InvalidParameter, NotFound
from api.schemas.geojson import FeatureCollection
from api.schemas.units import CoverageReportListed, KindSummary
from geo.codes import CodeError, level_of
from geo.coverage import Tolerances
from services import coverage as service
from services import units as unit_service

router = APIRouter(tags=["coverage"])

UnitQuery = Annotated[str, Query(description="Unit code: the analysis covers it and everything below it")]
GeoJSON = FeatureCollection
Summary = Annotated[dict[str, KindSummary], Field(description="per kind: count, new, resolved (and area_m2)")]


class CoverageOut(BaseModel):
    """An analysis compared with the unit's last saved report."""

    unit: str
    at: str | None
    report_id: int | None = Field(description="id of this run once saved (save=true)")
    previous_report: int | None = Field(description="the saved report compared with; none: all new")
    summary: Summary
    findings: GeoJSON = Field(description="FeatureCollection; properties kind, units, area_m2, new, detail")
    resolved: GeoJSON = Field(description="FeatureCollection: findings of the previous report gone now")


class ReportComparisonOut(BaseModel):
    """A saved report against the unit's report saved before it."""

    unit: str
    report_id: int
    previous_report: int | None
    summary: Summary
    new: GeoJSON = Field(description="FeatureCollection: findings not in the previous report")
    resolved: GeoJSON = Field(description="FeatureCollection: findings of the previous report gone")
    unchanged: int = Field(description="findings already in the previous report")


def _check_unit(session: SessionDep, code: str, at: datetime | None = None) -> None:
    """422 for a malformed code, 404 for a unit that does not exist (then); the permission check
    (api.access) has refused a unit outside the user's jurisdiction."""
    try:
        level_of(code)
    except CodeError as exc:
        raise InvalidParameter(f"unit: {exc}") from None
    if not unit_service.unit_exists(session, code, at):
        when = f" on {at:%Y-%m-%d %H:%M}" if at else ""
        raise NotFound(f"no unit with code {code}{when}")


@router.get("/coverage", response_model=CoverageOut, responses={404: {"description": "No such unit"}})
def coverage(
    session: SessionDep,
    settings: SettingsDep,
    at: AtDep,
    unit: UnitQuery,
    who: ActorDep,
    save: Annotated[bool, Query(description="Store the result as a dated report of the unit")] = False,
) -> dict:
    """Gaps, overlaps, slivers, overhangs, staff, party cells, size norm and cases in gaps, per kind;
    new and resolved against the unit's last saved report."""
    _check_unit(session, unit, at)
    tolerances = Tolerances.from_settings(settings)
    run = service.coverage_of(session, unit, tolerances, at=at, save=save, actor=who)
    if save:
        session.commit()
    return run.as_dict()


@router.get(
    "/coverage/reports",
    response_model=list[CoverageReportListed],
    responses={404: {"description": "No such unit"}},
)
def reports(session: SessionDep, unit: UnitQuery) -> list[dict]:
    """The stored coverage reports of a unit, newest first, with their summaries."""
    _check_unit(session, unit)
    return service.reports_of(session, unit)


@router.get(
    "/coverage/reports/{report_id}/compare",
    response_model=ReportComparisonOut,
    responses={404: {"description": "No such report"}},
)
def compare_report(
    session: SessionDep, report_id: Annotated[int, Path(description="A saved report")]
) -> dict:
    """A saved report against its predecessor: the new findings, the resolved ones, how many stayed."""
    return service.compare_report(session, report_id)  # 404 for a report that does not exist
