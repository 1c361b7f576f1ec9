"""Answers of the plan routes: drafts, their edits and changes, validation, impact, publication."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from api.schemas.base import Answer, SometimesAbsent
from api.schemas.geojson import Feature, FeatureCollection, Geometry, features


class PlanSummary(Answer):
    """A plan as lists show it."""

    id: int
    unit: str = Field(description="The unit redrawn")
    title: str
    author: str
    status: str = Field(description="draft, published or abandoned")
    created_at: datetime
    published_at: datetime | None
    published_by: str | None
    abandoned_at: datetime | None


class PlanListed(PlanSummary):
    """A plan in a list, with how many edits it has."""

    edits: int


class EditOut(Answer):
    """One edit of a plan, in the order applied."""

    id: int
    seq: int
    operation: str
    params: dict[str, Any]
    geometry: Geometry | None
    author: str
    created_at: datetime


class PublishedChange(Answer):
    """A unit a published plan created, changed or retired, with its versions."""

    code: str
    change: str
    old_version: int | None
    new_version: int | None


class PlanConflict(SometimesAbsent):
    """A unit changed since the draft started: the versions then and now, and why it conflicts."""

    code: str
    base_version: int | None = Field(None, description="Left out for a code allocated and used since")
    current_version: int | None = None
    reason: str
    by_plan: int | None = Field(None, description="The plan that changed it, when one did")
    by_plan_title: str | None = None


class PlanDetail(PlanSummary, SometimesAbsent):
    """A plan: its edits; for a draft the units it changes (property `change`) and any conflicts."""

    edits: list[EditOut]  # type: ignore[assignment]
    published_changes: list[PublishedChange] | None
    notes: list[str] | None = Field(None, description="A draft's notes from applying its edits")
    conflicts: list[PlanConflict] | None = Field(
        None, description="Units changed since the draft started (a draft only)"
    )
    changes: FeatureCollection | None = Field(None, description="A draft's changed units")


class EditAdded(PlanDetail):
    """The plan after an edit was added, and the edit's id."""

    edit_id: int


class PlanValidation(Answer):
    """Problems of a draft: errors refuse a publish, warnings do not."""

    ok: bool
    errors: int
    warnings: int
    problems: FeatureCollection = Field(description="Properties kind, severity, units, message, area_m2")


class GridVersion(Answer):
    """A case's grid and its version (none: no grid)."""

    grid: str | None
    version: int | None


class CaseMove(Answer):
    """A case whose grid changes with the plan."""

    id: int
    number: str
    status: str
    lon: float
    lat: float
    from_: GridVersion = Field(alias="from", description="grid and version before")
    to: GridVersion = Field(description="grid and version after")
    assign_status: str = Field(description="The assignment's status after (geo.assignment)")
    explanation: str


class Holding(GridVersion):
    """A case's grid and who holds it: the tier and the unit."""

    tier: str | None
    unit: str | None


class RedrawnCase(Answer):
    """A case a publish moved: its grid and holder before and after (its history entry's details)."""

    id: int
    number: str
    status: str
    plan_id: int
    from_: Holding = Field(alias="from")
    to: Holding


class PersonMove(Answer):
    """A party cell or a staff member whose unit changes (to none: left without one, reported)."""

    id: int
    from_: str | None = Field(alias="from")
    to: str | None


class PartyCellMove(PersonMove):
    """A party cell whose unit changes."""

    kind: str


class StaffMove(PersonMove):
    """A staff member whose unit changes."""

    role: str


class BeforeAfter(Answer):
    """A figure before and after the plan (none: the unit has none, or does not exist then)."""

    before: int | None
    after: int | None


class UnitImpact(Answer):
    """A unit the plan touches: its households, population, open cases and people before and after."""

    code: str
    name: str
    level: str
    kind: str | None
    change: str = Field(description="created, changed, retired or unchanged")
    households: BeforeAfter
    population: BeforeAfter
    estimated: bool = Field(description="Households and population estimated by area share")
    open_cases: BeforeAfter
    party_cells: BeforeAfter
    staff: BeforeAfter


class PlanImpact(Answer):
    """What changes hands per unit, before and after, with the geometry of each changed area."""

    plan: PlanSummary
    note: str
    units: list[UnitImpact] = Field(description="Per unit: households, population, cases, people")
    transfers: FeatureCollection = Field(description="Areas changing hands: from, to, area_m2, ...")
    cases: list[CaseMove]
    party_cells: list[PartyCellMove]
    staff: list[StaffMove]


class Publication(Answer):
    """What a publish did: units created, changed and retired, the cases and people moved."""

    plan: PlanSummary
    created: list[str]
    changed: list[str]
    retired: list[str]
    cases: list[RedrawnCase]
    party_cells: list[PartyCellMove]
    staff: list[StaffMove]


class UnitChange(Feature):
    """A unit created, retired or changed between two dates, with the changed area."""

    id: str


UnitChanges = features(UnitChange)


class UnitDiff(FeatureCollection):
    """Units below a unit that changed between two dates (a FeatureCollection)."""

    unit: str
    from_: datetime = Field(alias="from")
    to: datetime
    features: UnitChanges  # type: ignore[valid-type]


class CaseAssignmentSpan(Answer):
    """The grid a case was assigned to over a span of time (intake, then each redraw)."""

    from_: datetime = Field(alias="from")
    to: datetime | None
    grid: str | None
    version: int | None
    by: str = Field(description="intake, or who published the redraw")
    plan: int | None
