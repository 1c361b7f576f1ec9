"""Cases: intake (JSON or multipart with photos), dispatch queries, lifecycle moves."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.access import CurrentUser, visible_duplicates
from api.case_answers import case_answer
from api.case_moves import make_move
from api.deps import BboxDep, RulesDep, SessionDep, entitled, parse_at
from api.geojson import GeoJSONResponse
from api.moves import TransitionIn, read_move, request_body_doc
from api.params import Offset
from api.photo_links import with_photo_urls
from api.reports import REPLAYED, CaseIn, idempotency_key_of, read_photo, take_report
from api.schemas.bodies import json_or_multipart, photo_content
from api.schemas.cases import (
    CaseDetail,
    CaseList,
    CasePoints,
    CaseStatistics,
    Category,
    Department,
    ReportedCase,
)
from api.schemas.errors import error_responses
from api.schemas.refs import ref
from cases.lifecycle import CaseStatus, Source
from cases.worktime import SHANGHAI
from geo import geojson
from geo.codes import CODE_PATTERN, GRID_PATTERN
from services import case_reads

router = APIRouter(tags=["cases"])


UnitQuery = Annotated[str | None, Query(pattern=CODE_PATTERN, description="A unit and all below it")]
FromQuery = Annotated[str | None, Query(alias="from", description="Date or ISO datetime")]
ToQuery = Annotated[str | None, Query(alias="to", description="Date or ISO datetime (exclusive)")]


@router.get("/categories", response_model=list[Category])
def categories(rules: RulesDep) -> list[dict[str, Any]]:
    """The two-level category table with each subclass's time limits per stage."""
    table = rules.categories
    return [
        {
            "code": top.code,
            "name": top.name,
            "name_en": top.name_en,
            "children": [
                {
                    "code": c.code,
                    "name": c.name,
                    "name_en": c.name_en,
                    "limits": {s: str(v) for s, v in c.limits.items()},
                }
                for c in table.children(top.code)
            ],
        }
        for top in table.top_classes()
    ]


@router.get("/departments", response_model=list[Department])
def departments(rules: RulesDep) -> list[dict[str, str]]:
    """County departments a street may summon with a reassignment (街镇吹哨、部门报到)."""
    return [{"code": code, "name": name} for code, name in rules.departments.items()]




@router.post(
    "/cases",
    status_code=201,
    response_model=ReportedCase,
    responses={
        200: {"model": ReportedCase, "description": "A retry (same Idempotency-Key): the case made earlier"},
        **error_responses(413, 415, 429),
    },
    openapi_extra=json_or_multipart(CaseIn, "case"),
)
async def post_case(
    request: Request,
    response: Response,
    idempotency_key: Annotated[
        str | None, Header(description="A UUID the client made for this report; retries reuse it")
    ] = None,
) -> dict[str, Any]:
    """Report a case: JSON, or multipart with the JSON in field `case` and photos in `photos`."""
    # JSON reports are answered by JsonReports (below), matched before this route; this one
    # documents the endpoint and takes every other body.
    detail, created = await take_report(request, idempotency_key)
    if not created:
        response.status_code = 200
        response.headers.update(REPLAYED)
    return detail


@router.get(
    "/cases",
    response_model=CaseList | CasePoints,
    responses={
        200: {
            "description": "JSON (CaseList), or with format=geojson a FeatureCollection",
            "content": {geojson.MEDIA_TYPE: {"schema": ref(CasePoints)}},
        }
    },
)
def list_cases(
    session: SessionDep,
    user: CurrentUser,
    rules: RulesDep,
    bbox: BboxDep,
    status: Annotated[list[CaseStatus] | None, Query(description="One or more statuses")] = None,
    unit: UnitQuery = None,
    grid: Annotated[str | None, Query(pattern=GRID_PATTERN)] = None,
    category: Annotated[
        str | None, Query(pattern=r"^[0-9]{2,4}$", description="Top class or subclass")
    ] = None,
    source: Source | None = None,
    overdue: bool | None = None,
    light: Annotated[str | None, Query(pattern="^(green|yellow|red)$")] = None,
    reported_from: FromQuery = None,
    reported_to: ToQuery = None,
    format: Annotated[str, Query(pattern="^(json|geojson)$")] = "json",
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
    offset: Offset = 0,
) -> Any:
    """Cases for dispatchers, newest first, as JSON or as a GeoJSON FeatureCollection of points."""
    f = case_reads.CaseFilter(
        scope=user,
        status=[s.value for s in status] if status else None,
        unit=unit,
        grid=grid,
        category=category,
        source=source,
        overdue=overdue,
        light=light,
        bbox=bbox,
        reported_from=parse_at(reported_from, "reported_from"),
        reported_to=parse_at(reported_to, "reported_to"),
        limit=limit,
        offset=offset,
    )
    total, items = case_reads.list_cases(session, f, rules)
    if format == "geojson":
        features = [geojson.point_feature(c, id=c["id"]) for c in items]
        return GeoJSONResponse(geojson.feature_collection(features, total=total))
    return {"total": total, "limit": limit, "offset": offset, "items": items}


@router.get("/cases/{case_id}", response_model=CaseDetail)
def get_case(
    case_id: int, request: Request, session: SessionDep, rules: RulesDep, user: CurrentUser
) -> dict[str, Any]:
    """One case with its assignment and why, its clock and light, allowed moves, photos and history."""
    return case_answer(request, session, case_id, rules, user)


@router.get("/cases/{case_id}/photos/{seq}", response_class=Response, responses=photo_content())
def get_photo(case_id: int, seq: int, session: SessionDep) -> Response:
    """A photo of the case, as uploaded (its type checked from the bytes at intake)."""
    content_type, data = case_reads.photo(session, case_id, seq)
    return Response(data, media_type=content_type, headers={"X-Content-Type-Options": "nosniff"})


@router.post(
    "/cases/{case_id}/transitions",
    response_model=CaseDetail,
    responses={
        200: {"description": "The case after the move (or, for a retry with the same key, as it is)"},
        **error_responses(409, 413, 415),
    },
    openapi_extra=request_body_doc(TransitionIn),
)
async def post_transition(
    case_id: int,
    request: Request,
    response: Response,
    rules: RulesDep,
    user: CurrentUser,
    idempotency_key: Annotated[str | None, Header(description="A UUID per move; a retry reuses it")] = None,
) -> dict[str, Any]:
    """Move a case through its lifecycle (JSON, or multipart with after photos for `handled`); an
    illegal move is 409 with the allowed ones; a retry with the same Idempotency-Key is made once."""
    sent = await read_move(request, TransitionIn, read_photo)
    key = idempotency_key_of(idempotency_key)
    made = await run_in_threadpool(
        make_move, request, case_id, sent.body, rules, user, key=key, photos=sent.photos, digest=sent.digest
    )
    if not made:
        response.headers.update(REPLAYED)
    with request.app.state.read_sessions() as session:
        detail = case_reads.case_detail(session, case_id, rules, entitled=entitled(user))
    return with_photo_urls(visible_duplicates(detail, user))


@router.get("/stats", response_model=CaseStatistics)
def case_statistics(
    session: SessionDep,
    user: CurrentUser,
    unit: UnitQuery = None,
    start: FromQuery = None,
    end: ToQuery = None,
) -> dict[str, Any]:
    """Performance of a unit over a period (default: the last 30 days): received, closed, on time per
    stage, the tier cases were resolved at, handling time, satisfaction."""
    since, until = parse_at(start, "from"), parse_at(end, "to")
    return case_reads.case_statistics(session, user, unit, since, until, datetime.now(SHANGHAI))

