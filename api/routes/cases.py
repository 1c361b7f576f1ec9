"""Cases: intake (JSON or multipart with photos), dispatch queries, lifecycle moves."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import Headers, UploadFile
from starlette.routing import Match, Route
from starlette.types import Scope

from access.roles import Permission, User
from api.access import CurrentUser, RateLimit, authorize, resolve_user, user_of, visible_duplicates
from api.case_moves import make_move
from api.deps import BboxDep, SessionDep, parse_at, read_body
from api.errors import InvalidParameter, PayloadTooLarge, UnsupportedMediaType
from api.geojson import GeoJSONResponse
from api.intake import ANSWER_JSON, Submitted, submit
from api.moves import read_move, request_body_doc
from api.params import Offset
from api.photo_links import with_photo_urls
from api.routes.auth import client_ip
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
from cases.lifecycle import CaseStatus, Rating, Source
from cases.model import Intake, PhotoUpload, Reporter, scoped_key
from cases.photos import inspect_photo
from cases.rules import Rules
from cases.worktime import SHANGHAI
from geo import crs, geojson
from geo.codes import CODE_PATTERN, GRID_PATTERN
from geo.settings import Settings
from services import case_reads
from services import cases as case_service
from services.intake import NewCase

router = APIRouter(tags=["cases"])

JSON_LIMIT = 64 * 1024  # a report's text; photos come as files

UnitQuery = Annotated[str | None, Query(pattern=CODE_PATTERN, description="A unit and all below it")]
FromQuery = Annotated[str | None, Query(alias="from", description="Date or ISO datetime")]
ToQuery = Annotated[str | None, Query(alias="to", description="Date or ISO datetime (exclusive)")]


class ReporterIn(BaseModel):
    """Who reports; personal data, masked in responses."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=50)
    phone: str | None = Field(None, max_length=30, pattern=r"^[0-9+\- ]*$")
    confidential: bool = False


class CaseIn(BaseModel):
    """A report as a client sends it."""

    model_config = ConfigDict(extra="forbid")
    lon: float | None = Field(None, description="Longitude in `crs`; omit with lat to use a photo's GPS")
    lat: float | None = None
    crs: str = Field(crs.WGS84, description="wgs84 (default: phones), gcj02, bd09, cgcs2000 or EPSG:n")
    accuracy_m: float | None = Field(None, ge=0, le=100_000, description="GPS accuracy radius")
    location_method: Literal["gps", "pin", "photo"] | None = Field(None, description="GPS, moved pin, photo")
    category: str = Field(min_length=2, max_length=8, description="A subclass code from GET /categories")
    description: str = Field(min_length=1, max_length=4000)
    address: str | None = Field(None, max_length=500)
    source: Source = Source.PATROL
    urgent: bool = False
    reporter: ReporterIn | None = None


class TransitionIn(BaseModel):
    """One lifecycle move and what it carries (see `allowed_moves` of the case)."""

    model_config = ConfigDict(extra="forbid")
    to: CaseStatus
    note: str | None = Field(None, max_length=2000)
    reason: str | None = Field(None, max_length=2000, description="Required for side paths")
    unit: str | None = Field(None, max_length=18, description="Target unit code or department code")
    extend_by: str | None = Field(None, max_length=12, description='e.g. "2d" (working days) or "4h"')
    into: int | None = Field(None, description="The case this one duplicates (merge)")
    rating: Rating | None = None


async def get_rules(request: Request) -> Rules:
    """Categories, calendar and departments loaded when the app was built."""
    return request.app.state.rules


RulesDep = Annotated[Rules, Depends(get_rules)]




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


REPLAYED = {"Idempotent-Replayed": "true"}  # the header of the answer to a retry


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


async def take_report(request: Request, idempotency_key: str | None) -> tuple[dict[str, Any], bool]:
    """POST /cases once the access rule let the caller in: checks, reads, stores; (the case, created)."""
    user = user_of(request)
    if user is None:
        await run_in_threadpool(public_intake(request).check, request)
    key = idempotency_key_of(idempotency_key)
    body, uploads = await _read_report(request, request.app.state.settings)
    who = user.username if user else "public"
    return await intake_case(request, intake_from(body, uploads, key), actor=who, user=user)


async def post_json_report(request: Request) -> Response:
    """POST /cases with a JSON body, as post_case answers it (the endpoint of JsonReports)."""
    await authorize(request, await resolve_user(request))
    detail, created = await take_report(request, request.headers.get("idempotency-key"))
    return Response(
        ANSWER_JSON.dump_json(detail),
        201 if created else 200,
        None if created else REPLAYED,
        media_type="application/json",
    )


class JsonReports(Route):
    """POST /cases with a JSON body without FastAPI's per-request work: the intake hot path.

    Per report, FastAPI tried the routes in turn, resolved the dependencies (the access check
    among them) and validated the answer against the return type before serializing it: 0.22
    of the 0.78 ms a report's request took in the app (the writer's work aside). This route is
    matched first, for JSON reports only, and does what post_case does with the same functions:
    the access rule (authorize), then take_report, then the answer serialized by the same
    adapter. Its errors go through the app's handlers as every route's do, and every middleware
    applies. Other bodies (multipart with photos, or an unsupported type: 415) and the OpenAPI
    docs stay with post_case.
    """

    def __init__(self) -> None:
        super().__init__("/cases", post_json_report, methods=["POST"], include_in_schema=False)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """A full match for POST /cases with a JSON body; anything else is left to the other routes."""
        match, child = super().matches(scope)
        if match is Match.FULL and report_kind(Headers(scope=scope)) == "application/json":
            return Match.FULL, {**child, "route": self}  # `authorize` finds the rule by the route's path
        return Match.NONE, {}


async def intake_case(
    request: Request, intake: Intake, *, actor: str, user: User | None
) -> tuple[dict[str, Any], bool]:
    """Store a report (or find the one its key made) and answer with the case: (detail, created).

    Covered points are located from the server's in-memory grids when it keeps them; a field
    worker's report outside their unit is flagged. The process's writer stores reports arriving
    together in one transaction (api.intake); the answer comes after the commit. Used by POST
    /cases and Open311.
    """
    cache = getattr(request.app.state, "locate_cache", None)
    assignment = cache.locate(intake.lon, intake.lat) if cache is not None else None
    # A key is the caller's own: another caller sending it makes their own case, never finds this one.
    intake = replace(intake, idempotency_key=scoped_key(intake.idempotency_key, user.id if user else None))
    case = NewCase(intake, actor, assignment, reported_by=user)
    return await submit(request.app.state, Submitted(case, entitled(user)))


def public_intake(request: Request) -> RateLimit:
    """The limit on anonymous reports (citizens, scripts) over every process:
    GRIDMAP_PUBLIC_INTAKE_PER_MINUTE."""
    state = request.app.state
    if getattr(state, "public_intake", None) is None:
        state.public_intake = RateLimit("intake", state.settings.public_intake_per_minute, 60)
    return state.public_intake


def entitled(user: User | None) -> bool:
    """Whether the caller may see reporters' names and phones (never a confidential reporter's)."""
    return user is not None and user.can(Permission.READ_PERSONAL)


def idempotency_key_of(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidParameter(f"Idempotency-Key must be a UUID, not {value[:60]!r}") from None


async def _read_report(request: Request, settings: Settings) -> tuple[CaseIn, list[PhotoUpload]]:
    """The report and its checked photos, from JSON or multipart; size limits before parsing."""
    kind = report_kind(request.headers)
    limit = JSON_LIMIT + settings.max_photos * settings.max_photo_bytes + 64 * 1024
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the request is {int(declared):,} bytes; at most {limit:,} are accepted")
    if kind == "application/json":
        too_large = f"a JSON report is at most {JSON_LIMIT:,} bytes; send photos as multipart files"
        raw = await read_body(request, JSON_LIMIT, too_large)
        return _parse_case(raw), []
    if kind == "multipart/form-data":
        form = await request.form(max_files=settings.max_photos + 1, max_fields=10, max_part_size=JSON_LIMIT)
        field = form.get("case")
        if not isinstance(field, str):
            raise InvalidParameter("multipart reports need a form field `case` holding the report as JSON")
        files = [f for f in form.getlist("photos") if isinstance(f, UploadFile)]
        if len(files) > settings.max_photos:
            raise InvalidParameter(f"at most {settings.max_photos} photos per report, not {len(files)}")
        uploads = [await _photo(f, settings) for f in files]
        return _parse_case(field.encode()), uploads
    raise UnsupportedMediaType(
        f"send the report as application/json or multipart/form-data, not {kind or 'no content type'}"
    )


def report_kind(headers: Headers) -> str:
    """The body's media type: lower case, without parameters; '' when the request names none."""
    return headers.get("content-type", "").split(";")[0].strip().lower()


def _parse_case(raw: bytes) -> CaseIn:
    try:
        return CaseIn.model_validate_json(raw)
    except ValidationError as e:
        raise RequestValidationError(e.errors(include_url=False, include_context=False)) from None


async def _photo(upload: UploadFile, settings: Settings) -> PhotoUpload:
    data = await upload.read(settings.max_photo_bytes + 1)
    # Decoding a photo (HEIC included) takes tens of ms: off the event loop the writer shares.
    photo = await run_in_threadpool(inspect_photo, data, max_bytes=settings.max_photo_bytes)
    return PhotoUpload(photo, data)


def intake_from(body: CaseIn, uploads: list[PhotoUpload], key: str | None) -> Intake:
    """Where the case is (reported, else a photo's GPS), converted to storage lon/lat."""
    if (body.lon is None) != (body.lat is None):
        raise InvalidParameter("give both lon and lat, or neither (then a photo's GPS is used)")
    if body.lon is not None:
        lon, lat = crs.point_to_storage(body.lon, body.lat, body.crs)
        source, input_crs, input_lon, input_lat = "report", crs.normalize_crs(body.crs), body.lon, body.lat
    else:
        with_gps = next((u for u in uploads if u.photo.gps), None)
        if with_gps is None:
            raise InvalidParameter(
                "the report has no location: send lon and lat, or a photo with GPS in its EXIF"
            )
        input_lon, input_lat = with_gps.photo.gps
        lon, lat = crs.point_to_storage(input_lon, input_lat, crs.WGS84)  # cameras record WGS84
        source, input_crs = "photo_exif", crs.normalize_crs(crs.WGS84)
    digest = hashlib.sha256(body.model_dump_json().encode())
    for u in uploads:
        digest.update(u.sha256.encode())
    reporter = body.reporter
    return Intake(
        lon=lon,
        lat=lat,
        input_crs=input_crs,
        input_lon=input_lon,
        input_lat=input_lat,
        accuracy_m=body.accuracy_m,
        location_source=source,
        category=body.category,
        description=body.description,
        source=body.source,
        address=body.address,
        urgent=body.urgent,
        reporter=Reporter(reporter.name, reporter.phone, reporter.confidential) if reporter else None,
        flags=[note for u in uploads for note in u.photo.notes],  # why a photo's GPS or time was ignored
        location_method="photo" if source == "photo_exif" else body.location_method,
        idempotency_key=key,
        request_hash=digest.hexdigest(),
        photos=uploads,
    )


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
    detail = case_service.show_case(
        session, case_id, rules, viewer=user, entitled=entitled(user), ip=client_ip(request)
    )
    session.commit()  # the disclosure's audit entry, if any
    return with_photo_urls(visible_duplicates(detail, user))


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
    sent = await read_move(request, TransitionIn, _photo)
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


def _json_default(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def event_json(event: dict[str, Any]) -> str:
    """An event's data line: the case as it is now."""
    return json.dumps(
        {"kind": event["kind"], "at": event["at"], **geojson.with_position(event["body"])},  # as in /cases
        default=_json_default, ensure_ascii=False,
    )  # fmt: skip
