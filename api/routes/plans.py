"""Draft plans (redrawing): open, edit, validate, impact, publish, abandon; unit diffs and case history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.access import CurrentUser, client_address
from api.deps import ActorDep, SessionDep, SettingsDep, parse_at
from api.geojson import GeoJSONResponse
from api.plan_edits import EditIn
from api.schemas.errors import error_responses
from api.schemas.plans import (
    CaseAssignmentSpan,
    EditAdded,
    PlanDetail,
    PlanImpact,
    PlanListed,
    PlanValidation,
    Publication,
    UnitDiff,
)
from geo.codes import CODE_PATTERN
from services import plan_answers as answers
from services import plan_publish
from services import plans as service

router = APIRouter(tags=["plans"])


class PlanIn(BaseModel):
    """A new draft on a unit (a community to redraw its grids, a grid for its micro-grids)."""

    model_config = ConfigDict(extra="forbid")
    unit: str = Field(pattern=CODE_PATTERN)
    title: str = Field(min_length=1, max_length=200)


@router.post("/plans", status_code=201, response_model=PlanDetail)
def post_plan(body: PlanIn, session: SessionDep, who: ActorDep) -> dict[str, Any]:
    """Open a draft plan on a unit; it starts from the unit's current children."""
    detail = answers.open_plan(session, body.unit, body.title, author=who)
    session.commit()
    return detail


@router.get("/plans", response_model=list[PlanListed])
def get_plans(
    session: SessionDep,
    user: CurrentUser,
    unit: Annotated[str | None, Query(pattern=CODE_PATTERN, description="A unit and all below it")] = None,
    status: Annotated[str | None, Query(pattern="^(draft|published|abandoned)$")] = None,
) -> list[dict[str, Any]]:
    """Plans, newest first (of the units in your jurisdiction)."""
    return service.list_plans(session, unit=unit or (user.unit_code if user else None) or None, status=status)


@router.get("/plans/{plan_id}", response_model=PlanDetail)
def get_plan(plan_id: int, session: SessionDep) -> dict[str, Any]:
    """A plan: its edits, the units it changes (GeoJSON, property `change`) and any conflicts."""
    return service.plan_detail(session, plan_id)


@router.post(
    "/plans/{plan_id}/edits", status_code=201, response_model=EditAdded, responses=error_responses(409)
)
def post_edit(plan_id: int, body: EditIn, session: SessionDep, who: ActorDep) -> dict[str, Any]:
    """Add an edit to a draft; refused (422) with the reason when it cannot apply."""
    added = answers.add_edit(session, plan_id, body.to_edit(), author=who)
    session.commit()
    return added


@router.delete("/plans/{plan_id}/edits/{edit_id}", response_model=PlanDetail, responses=error_responses(409))
def delete_edit(plan_id: int, edit_id: int, session: SessionDep) -> dict[str, Any]:
    """Remove an edit from a draft (refused while a later edit needs what it made)."""
    detail = answers.delete_edit(session, plan_id, edit_id)
    session.commit()
    return detail


@router.get("/plans/{plan_id}/validate", response_model=PlanValidation, responses=error_responses(409))
def validate_plan(plan_id: int, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """Problems of the draft with their locations; errors refuse a publish, warnings do not."""
    return answers.validation(session, plan_id, settings)


@router.get("/plans/{plan_id}/impact", response_model=PlanImpact, responses=error_responses(409))
def impact(plan_id: int, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """What changes hands per unit, before and after, with the geometry of each changed area."""
    return plan_publish.impact(session, plan_id, settings)


@router.post("/plans/{plan_id}/publish", response_model=Publication, responses=error_responses(409))
def publish(
    plan_id: int, request: Request, session: SessionDep, settings: SettingsDep, who: ActorDep
) -> dict[str, Any]:
    """Publish a draft atomically; 409 naming the conflict when a unit it touches changed meanwhile."""
    result = plan_publish.publish(session, plan_id, settings, actor=who, ip=client_address(request))
    session.commit()
    return result


@router.post("/plans/{plan_id}/abandon", response_model=PlanDetail, responses=error_responses(409))
def abandon(plan_id: int, session: SessionDep, who: ActorDep) -> dict[str, Any]:
    """Give up a draft (kept for the record)."""
    detail = answers.abandon(session, plan_id, actor=who)
    session.commit()
    return detail


@router.get("/units/{code}/diff", response_class=GeoJSONResponse, response_model=UnitDiff)
def unit_diff(
    code: Annotated[str, Path(pattern=CODE_PATTERN)],
    session: SessionDep,
    start: Annotated[str, Query(alias="from", min_length=1, description="Date or ISO datetime")],
    end: Annotated[str | None, Query(alias="to", description="Date or ISO datetime; default now")] = None,
) -> dict[str, Any]:
    """Units below `code` created, retired or changed between two dates, with the changed areas."""
    return answers.unit_diff(session, code, parse_at(start, "from"), parse_at(end, "to"))


@router.get("/cases/{case_id}/assignments", response_model=list[CaseAssignmentSpan])
def case_assignments(case_id: int, session: SessionDep) -> list[dict[str, Any]]:
    """The grid and grid version a case was assigned to over time (intake, then each redraw)."""
    return service.case_assignments(session, case_id)
