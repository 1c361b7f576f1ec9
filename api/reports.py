"""A report as POST /cases and Open311 take it: its body (JSON or multipart with photos), its
checks and limits, its idempotency key, and its way into the intake writer (api.intake)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace
from typing import Any, Literal

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import Headers, UploadFile
from starlette.routing import Match, Route
from starlette.types import Scope

from access.roles import User
from api.access import RateLimit, authorize, resolve_user, user_of
from api.deps import entitled, read_body
from api.errors import InvalidParameter, PayloadTooLarge, UnsupportedMediaType
from api.intake import ANSWER_JSON, Submitted, submit
from cases.lifecycle import Source
from cases.model import Intake, PhotoUpload, Reporter, scoped_key
from cases.photos import inspect_photo
from geo import crs
from geo.settings import Settings
from services.intake import NewCase

JSON_LIMIT = 64 * 1024  # a report's text; photos come as files


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


REPLAYED = {"Idempotent-Replayed": "true"}  # the header of the answer to a retry


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
        uploads = [await read_photo(f, settings) for f in files]
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


async def read_photo(upload: UploadFile, settings: Settings) -> PhotoUpload:
    """A photo of a request, read within its limit and checked off the event loop."""
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
