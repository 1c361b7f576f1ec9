"""Answers about units (county down to grid): a unit, its versions, the map's popup and search,
coverage reports, and the service's health."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from api.schemas.base import Answer, SometimesAbsent
from api.schemas.geojson import Feature


class Health(Answer):
    """The service is up and its database answers."""

    status: str
    database: str
    schema_: str | None = Field(alias="schema", description="The database's migration revision")
    postgis: str


class UnitRefOut(Answer):
    """A unit named in another's answer (a parent)."""

    code: str
    name: str
    level: str


class UnitFields(Answer):
    """What every answer about one unit names first: its code, level, name, kind and figures."""

    code: str
    level: str
    name: str
    kind: str | None
    special_type: str | None
    households: int | None
    population: int | None


class UnitProperties(UnitFields):
    """A unit's attributes and what hangs off it."""

    attributes: dict[str, Any] | None
    warnings: list[str] | None = Field(description="What the import's checks noted and let pass")
    version: int
    valid_from: str
    valid_to: str | None
    parents: list[UnitRefOut]
    children_count: int
    staff_counts: dict[str, int]
    party_cell_counts: dict[str, int]


class UnitFeature(Feature):
    """A unit as a GeoJSON Feature (id: its code)."""

    id: str
    properties: UnitProperties  # type: ignore[assignment]


class UnitVersion(Answer):
    """One version of a unit's boundary."""

    version: int
    name: str
    kind: str | None
    valid_from: datetime
    valid_to: datetime | None
    area_m2: float


class UnitPopup(UnitFields):
    """What the map's popup of a unit shows."""

    version: int
    parents: list[UnitRefOut]
    children_count: int
    staff_counts: dict[str, int]
    party_cell_counts: dict[str, int]
    open_cases: int
    overdue_cases: int


class FoundUnit(Answer):
    """A unit found by the map's search, with its extent."""

    code: str
    name: str
    level: str
    bbox: list[float] = Field(description="minlon, minlat, maxlon, maxlat")


class UnitSearch(Answer):
    """Units matching a search."""

    units: list[FoundUnit]


class ReportTolerances(Answer):
    """The thresholds a coverage report was made with (geo.coverage.Tolerances)."""

    sliver_width_m: float
    min_area_m2: float
    precision_m: float
    urban_households: list[int] = Field(description="min, max households of an urban grid")
    rural_households: list[int] = Field(description="min, max households of a rural grid")


class KindSummary(SometimesAbsent):
    """A kind of finding in a report: how many, how many new and resolved, and their area (area kinds)."""

    count: int
    new: int
    resolved: int = 0
    area_m2: float | None = None


class CoverageReportListed(Answer):
    """A stored coverage report of a unit."""

    id: int
    unit: str
    created_at: str
    at: str | None
    tolerances: ReportTolerances | None
    summary: dict[str, KindSummary] | None = Field(description="Per kind of finding")
