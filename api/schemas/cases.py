"""Answers of the case routes: categories, departments, a case (summary and detail), lists, figures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from api.schemas.base import Answer, passed_through
from api.schemas.geojson import Feature, FeatureCollection, features
from geo.assignment import Assignment

StoredAssignment = passed_through(Assignment)

# Fields read from JSON the database built (history, photos, duplicates) keep the text it wrote:
# their times are strings here, as they always were in the answers.


class Subclass(Answer):
    """A category subclass (小类) and its time limits per stage."""

    code: str
    name: str
    name_en: str
    limits: dict[str, str] = Field(description='Per stage, e.g. {"dispatch": "2h", "handle": "3d"}')


class Category(Answer):
    """A top class (大类) of the category table with its subclasses."""

    code: str
    name: str
    name_en: str
    children: list[Subclass]


class Department(Answer):
    """A county department a street may summon (街镇吹哨、部门报到)."""

    code: str
    name: str


class CaseSummary(Answer):
    """A case as lists show it (the reporter masked or left out)."""

    id: int
    number: str = Field(description="The case number people quote")
    status: str
    source: str
    category: str
    category_name: str
    description: str
    address: str | None
    urgent: bool
    lon: float
    lat: float
    accuracy_m: float | None
    grid_code: str | None
    assign_status: str
    tier: str | None
    unit_code: str | None
    department: str | None
    department_name: str | None
    stage: str | None
    stage_due_at: datetime | None
    light: str | None = Field(description="green, yellow or red while a stage clock runs")
    overdue: bool
    reported_at: datetime
    updated_at: datetime


class ReporterShown(Answer):
    """Who reported, as the caller may see it: masked unless entitled, `***` when confidential."""

    name: str | None
    phone: str | None
    confidential: bool


class ReportedLocation(Answer):
    """The location as the client sent it, before conversion to storage lon/lat."""

    crs: str | None
    lon: float | None
    lat: float | None


class Photo(Answer):
    """A photo of the case (`before` from the reporter, `after` from the handler)."""

    url: str
    seq: int
    stage: str
    content_type: str
    width: int | None
    height: int | None
    has_gps: bool


class HistoryEntry(Answer):
    """One step of the case's history, oldest first."""

    at: str
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    note: str | None
    details: dict[str, Any] | None


class Duplicate(Answer):
    """An open case of the same category reported near it around the same time."""

    id: int
    number: str
    status: str
    distance_m: float


class CaseDetail(CaseSummary):
    """Everything about a case: assignment and why, clock, allowed moves, photos, history."""

    reporter: ReporterShown | None
    input: ReportedLocation
    location_source: str
    location_method: str | None
    # Passed through: the JSON intake path (api.routes.cases.JsonReports) answers the stored
    # assignment unvalidated, and both routes must answer the same bytes.
    assignment: StoredAssignment = Field(description="How the grid was chosen: /locate's answer then")
    grid_version: int | None
    distance_m: float | None
    stage_started_at: datetime | None
    stage_yellow_at: datetime | None
    escalations: int
    merged_into: int | None
    rating: str | None
    closed_at: datetime | None
    allowed_moves: dict[str, list[str]] = Field(description="Each move open now, with what it needs")
    photos: list[Photo]
    history: list[HistoryEntry]
    duplicates: list[Duplicate]


class ReportedCase(CaseDetail):
    """The answer to a report: the case, and why a photo's GPS or time was ignored (if it was)."""

    flags: list[str] = Field(default_factory=list)


class CaseList(Answer):
    """A page of cases, newest first."""

    total: int
    limit: int
    offset: int
    items: list[CaseSummary]


class CasePoint(Feature):
    """A case as a GeoJSON point; its properties are the case's summary without lon/lat."""

    id: int


CasePointList = features(CasePoint)


class CasePoints(FeatureCollection):
    """Cases as a GeoJSON FeatureCollection of points, with the number matching the filter."""

    total: int
    features: CasePointList  # type: ignore[valid-type]


class StageOnTimeFigure(Answer):
    """Stages completed in the period, and how many within their limit."""

    done: int
    on_time: int
    rate: float | None


class TierShares(Answer):
    """The tier responsible when cases were closed, and the share kept local."""

    counts: dict[str, int]
    shares: dict[str, float | None]
    local_share: float | None


class Ratings(Answer):
    """Revisit ratings in the period; `rate` is the satisfied share."""

    counts: dict[str, int]
    rate: float | None


class CaseStatistics(Answer):
    """A unit's performance over a period."""

    unit: str | None
    from_: datetime = Field(alias="from")
    to: datetime
    received: int
    closed: int
    avg_handling_hours: float | None
    reopened: int = Field(description="Cases reopened in the period (rework)")
    on_time: dict[str, StageOnTimeFigure]
    resolved_by_tier: TierShares
    satisfaction: Ratings
