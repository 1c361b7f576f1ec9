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


class PlanDetail(PlanSummary, SometimesAbsent):
    """A plan: its edits; for a draft the units it changes (property `change`) and any conflicts."""

    edits: list[EditOut]  # type: ignore[assignment]
    published_changes: list[PublishedChange] | None
    notes: list[Any] | None = Field(None, description="A draft's notes from applying its edits")
    conflicts: list[dict[str, Any]] | None = Field(
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


class CaseMove(Answer):
    """A case whose grid changes with the plan."""

    id: int
    number: str
    status: str
    from_: dict[str, Any] = Field(alias="from", description="grid and version before")
    to: dict[str, Any] = Field(description="grid and version after")


class PlanImpact(Answer):
    """What changes hands per unit, before and after, with the geometry of each changed area."""

    plan: PlanSummary
    note: str
    units: list[dict[str, Any]] = Field(description="Per unit: households, population, cases, people")
    transfers: FeatureCollection = Field(description="Areas changing hands: from, to, area_m2, ...")
    cases: list[CaseMove]
    party_cells: list[dict[str, Any]]
    staff: list[dict[str, Any]]


class Publication(Answer):
    """What a publish did: units created, changed and retired, the cases and people moved."""

    plan: PlanSummary
    created: list[str]
    changed: list[str]
    retired: list[str]
    cases: list[dict[str, Any]]
    party_cells: list[dict[str, Any]]
    staff: list[dict[str, Any]]


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
