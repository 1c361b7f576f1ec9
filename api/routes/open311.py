"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2) for the 12345 hotline and third-party systems.

A service is an assignable category subclass; a service request is a case. Requests come in
form-encoded per the spec (or as JSON) and become cases exactly as POST /cases makes them, with
source hotline_12345. Statuses map to open/closed with cases.lifecycle.is_open. Every answer,
errors included, is JSON or XML as the path's extension says, in the spec's shapes
(api/open311_format.py); the rest of the API keeps its own error format. Reporter data never
appears in an answer. Reading requests is public unless GRIDMAP_OPEN311_PUBLIC_READ=false (the
rule in api.access says so): anonymous readers get the public view (open311_format.public_request),
signed-in ones their jurisdiction, as on /cases.

Accepted but not used yet: `api_key`, `account_id` and `device_id` (accounts come with issue 6),
`email` (a reporter is a name and a phone), `jurisdiction_id`, `address_id`, `attribute[...]`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from access.roles import User
from api.access import CurrentUser, RateLimit
from api.deps import RulesDep, SessionDep, read_body, request_session
from api.errors import InvalidParameter, NotFound, UnsupportedMediaType
from api.open311_format import (
    Open311Route,
    notice,
    public_request,
    request_document,
    respond,
    service_document,
    w3c,
)
from api.params import in_calendar
from api.reports import JSON_LIMIT, CaseIn, idempotency_key_of, intake_case, intake_from, public_intake
from api.schemas.errors import error_responses
from api.schemas.open311 import (
    RequestCreated,
    Service,
    ServiceDefinition,
    ServiceRequest,
    open311_answer,
    request_body,
)
from cases.lifecycle import FINISHED_STATUSES, OPEN_STATUSES, Source
from cases.rules import Rules
from cases.worktime import SHANGHAI
from geo import crs
from services import open311 as service

ACTOR = "open311"  # the history's `who` for requests made here (api_key will name the system: issue 6)
WINDOW = timedelta(days=90)  # the spec's default and largest date range
MAX_REQUESTS = 1000  # the spec's default maximum per answer
MEDIA_URL_LIMIT = 2000

CJK = re.compile("[\u3400-\u9fff]")

# CaseIn's fields under the names an Open311 client sent them.
PARAM_NAMES = {
    "lon": "long",
    "category": "service_code",
    "address": "address_string",
    "name": "first_name/last_name",
}


router = APIRouter(prefix="/open311/v2", tags=["open311"], route_class=Open311Route)

FormatPath = Annotated[str, Path(description="json or xml", pattern="^(json|xml)$")]


# ---------------------------------------------------------------- answers


# ---------------------------------------------------------------- services


@router.get("/services.{format}", responses=open311_answer(Service, many=True))
def services(format: FormatPath, rules: RulesDep) -> Response:
    """Every service: one per assignable category subclass, grouped by its top class."""
    table = rules.categories
    listed = [service_document(c, table) for c in table if table.is_assignable(c.code)]
    return respond(format, "services", listed)


@router.get("/services/{service_code}.{format}", responses=open311_answer(ServiceDefinition, many=False))
def service_definition(service_code: str, format: FormatPath, rules: RulesDep) -> Response:
    """A service's definition: it asks for no attributes beyond the standard parameters."""
    if not rules.categories.is_assignable(service_code):
        raise NotFound(f"no service {service_code!r}: the services are listed at /open311/v2/services.json")
    return respond(format, "service_definition", {"service_code": service_code, "attributes": []})


# ---------------------------------------------------------------- creating requests


@router.post(
    "/requests.{format}",
    status_code=201,
    responses={
        **open311_answer(RequestCreated, many=True, status=201),
        200: {"description": "A retry (same Idempotency-Key): the request made earlier"},
        **error_responses(413, 415, 429),
    },
    openapi_extra=request_body(),
)
async def post_request(
    format: FormatPath,
    request: Request,
    rules: RulesDep,
    user: CurrentUser,
    idempotency_key: Annotated[
        str | None, Header(description="A UUID the client made for this request; retries reuse it")
    ] = None,
) -> Response:
    """Create a service request (a case from the 12345 hotline): form-encoded per the spec, or JSON."""
    if user is None:
        await run_in_threadpool(public_intake(request).check, request)
    key = idempotency_key_of(idempotency_key)
    params = await _read_params(request)
    intake = intake_from(_case_in(params, rules), [], key)
    actor = user.username if user else ACTOR
    case, created = await intake_case(request, intake, actor=actor, user=user)

    def answer_for() -> dict[str, Any]:
        with request_session(request) as session:  # not a dependency: no thread hops before intake
            agency = service.agencies(session, rules, [case])[case["id"]]
        return {
            "service_request_id": str(case["id"]),
            "service_notice": notice(case, agency),
            "account_id": None,
        }

    answer = await run_in_threadpool(answer_for)
    response = respond(format, "service_requests", [answer], 201 if created else 200)
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return response


async def _read_params(request: Request) -> dict[str, Any]:
    """The request's parameters: form-encoded (honouring its charset, e.g. GBK), or a JSON object."""
    kind, _, options = request.headers.get("content-type", "").partition(";")
    kind = kind.strip().lower()
    if kind not in ("application/x-www-form-urlencoded", "application/json"):
        raise UnsupportedMediaType(
            f"send application/x-www-form-urlencoded (or JSON), not {kind or 'no content type'}"
        )
    raw = await _body(request)
    if kind == "application/json":
        return _json_params(raw)
    charset = _charset(options)
    try:
        pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True, encoding=charset, errors="strict")
        return dict(pairs)
    except (LookupError, UnicodeDecodeError):
        raise InvalidParameter(f"the form is not valid {charset}: declare its charset") from None


async def _body(request: Request) -> bytes:
    return await read_body(request, JSON_LIMIT, f"a request is at most {JSON_LIMIT:,} bytes")


def _charset(options: str) -> str:
    for option in options.split(";"):
        name, _, value = option.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return "utf-8"


def _json_params(raw: bytes) -> dict[str, Any]:
    try:
        params = json.loads(raw)
    except ValueError:
        raise InvalidParameter("the body is not valid JSON") from None
    if not isinstance(params, dict):
        raise InvalidParameter("a JSON body must be an object of the request's parameters")
    return params


def _text(params: dict[str, Any], name: str) -> str | None:
    """A parameter as text; absent and blank are both None."""
    value = params.get(name)
    if value is None:
        return None
    return str(value).strip() or None


def _case_in(params: dict[str, Any], rules: Rules) -> CaseIn:
    """The report POST /cases would receive for these Open311 parameters."""
    code = _text(params, "service_code")
    if code is None:
        raise InvalidParameter("service_code is required: pick one from /open311/v2/services.json")
    if _text(params, "lat") is None or _text(params, "long") is None:
        raise InvalidParameter(
            "lat and long are required (WGS84 decimal degrees, or declare crs): requests are assigned "
            "to grids by location, and address_string alone cannot be located"
        )
    if not rules.categories.is_assignable(code):  # the spec: an unknown service_code is 404
        raise NotFound(f"no service {code!r}: the services are listed at /open311/v2/services.json")
    description = _text(params, "description") or rules.categories.get(code).name
    media_url = _media_url(_text(params, "media_url"))
    body = {
        "lon": _text(params, "long"),
        "lat": _text(params, "lat"),
        "crs": _crs(_text(params, "crs")),
        "category": code,
        "description": description,
        "address": _text(params, "address_string"),
        "source": Source.HOTLINE,
        "reporter": _reporter(params),
    }
    try:
        report = CaseIn.model_validate(body)  # the description's limit counts the caller's text alone
    except ValidationError as e:
        raise InvalidParameter(_validation_message(e)) from None
    if media_url:  # the case has no column for a link: it is kept as an extra line of the description
        report = report.model_copy(update={"description": f"{description}\n附件 media_url: {media_url}"})
    return report


def _validation_message(error: ValidationError) -> str:
    parts = []
    for e in error.errors(include_url=False):
        name = str(e["loc"][-1]) if e["loc"] else "request"
        parts.append(f"{PARAM_NAMES.get(name, name)}: {e['msg']}")
    return "; ".join(parts)


def _crs(value: str | None) -> str:
    """The extension parameter `crs`: the spec's WGS84 by default, or a system Chinese maps use."""
    name = crs.normalize_crs(value or crs.WGS84)
    if name not in crs.NAMED_SYSTEMS:
        raise InvalidParameter(f"crs={value!r}: use wgs84 (the default), gcj02, bd09 or cgcs2000")
    return name


def _media_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(value) > MEDIA_URL_LIMIT:
        raise InvalidParameter(f"media_url must be an http(s) URL of at most {MEDIA_URL_LIMIT} characters")
    return value


def _reporter(params: dict[str, Any]) -> dict[str, Any] | None:
    """Who called: first and last name, phone, and whether to keep them confidential (extension)."""
    name = full_name(_text(params, "first_name"), _text(params, "last_name"))
    phone = _text(params, "phone")
    confidential = _text(params, "confidential")
    if name is None and phone is None and confidential is None:
        return None
    return {"name": name, "phone": phone, "confidential": confidential or False}


def full_name(first: str | None, last: str | None) -> str | None:
    """One name from the spec's two: family name first and no space for Chinese (张 + 三 = 张三)."""
    if any(part and CJK.search(part) for part in (first, last)):
        return "".join(part for part in (last, first) if part)
    return " ".join(part for part in (first, last) if part) or None


# ---------------------------------------------------------------- reading requests


@router.get(
    "/requests.{format}", responses={**open311_answer(ServiceRequest, many=True), **error_responses(429)}
)
def get_requests(
    format: FormatPath,
    request: Request,
    session: SessionDep,
    rules: RulesDep,
    user: CurrentUser,
    service_request_id: Annotated[
        str | None, Query(description="Comma-separated ids; the other filters are then ignored")
    ] = None,
    service_code: Annotated[str | None, Query(description="Comma-separated service codes")] = None,
    start_date: Annotated[str | None, Query(description="Earliest requested_datetime (W3C/ISO 8601)")] = None,
    end_date: Annotated[str | None, Query(description="Latest requested_datetime (W3C/ISO 8601)")] = None,
    status: Annotated[str | None, Query(description="open, closed, or both comma-separated")] = None,
) -> Response:
    """Service requests, newest first: by id, or in a window of at most 90 days (default: the last 90)."""
    if user is None:
        public_reads(request).check(request)
    if service_request_id is not None:
        query = service.RequestQuery(MAX_REQUESTS, ids=_ids(service_request_id))
    else:
        codes, statuses = tuple(_codes(service_code, rules)), _statuses(status)
        query = service.RequestQuery(MAX_REQUESTS, None, codes, statuses, _window(start_date, end_date))
    found = service.find_requests(session, rules, query, user)
    return respond(format, "service_requests", _requests(request, found, user))


@router.get(
    "/requests/{service_request_id}.{format}",
    responses={**open311_answer(ServiceRequest, many=True), **error_responses(429)},
)
def get_request(
    service_request_id: str,
    format: FormatPath,
    request: Request,
    session: SessionDep,
    rules: RulesDep,
    user: CurrentUser,
) -> Response:
    """One service request, as a one-element list (the spec's shape)."""
    if user is None:
        public_reads(request).check(request)
    if not re.fullmatch(r"[0-9]{1,18}", service_request_id):
        raise NotFound(f"no service request {service_request_id!r}")
    found = service.request_of(session, rules, int(service_request_id))
    return respond(format, "service_requests", _requests(request, found, user))


def public_reads(request: Request) -> RateLimit:
    """The limit on anonymous reads of requests (a list costs up to 1000 cases):
    GRIDMAP_OPEN311_PUBLIC_READS_PER_MINUTE."""
    state = request.app.state
    if getattr(state, "open311_public_reads", None) is None:
        state.open311_public_reads = RateLimit(
            "open311_read", state.settings.open311_public_reads_per_minute, 60
        )
    return state.open311_public_reads


def _ids(value: str) -> list[int]:
    ids = [part.strip() for part in value.split(",") if part.strip()]
    if not ids or not all(re.fullmatch(r"[0-9]{1,18}", i) for i in ids):
        raise InvalidParameter(f"service_request_id={value[:60]!r}: give comma-separated request ids")
    if len(ids) > MAX_REQUESTS:
        raise InvalidParameter(f"at most {MAX_REQUESTS} service_request_id values at once")
    return list(dict.fromkeys(int(i) for i in ids))


def _codes(value: str | None, rules: Rules) -> list[str | None]:
    """The service codes asked for, each known; [None] for all."""
    if not value:
        return [None]
    codes = list(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    for code in codes:
        rules.categories.get(code)
    return codes or [None]


def _statuses(value: str | None) -> list[str] | None:
    """The internal statuses behind open and/or closed; None for both."""
    wanted = {part.strip().lower() for part in (value or "").split(",") if part.strip()}
    if wanted - {"open", "closed"}:
        raise InvalidParameter(f"status={value!r}: use open, closed or both (comma-separated)")
    if len(wanted) != 1:
        return None
    return OPEN_STATUSES if "open" in wanted else FINISHED_STATUSES


def _window(start_date: str | None, end_date: str | None) -> tuple[datetime, datetime | None]:
    """[since, until) of requested_datetime: as given, the other end 90 days away, or the last 90 days."""
    since = _date_param("start_date", start_date, end=False)
    until = _date_param("end_date", end_date, end=True)
    if since is None and until is None:  # up to now, with no upper bound: immune to clock skew
        return datetime.now(UTC) - WINDOW, None
    if since is None:
        since = until - WINDOW
    if until is None:
        until = since + WINDOW
    if since >= until:
        raise InvalidParameter(f"start_date ({w3c(since)}) must be before end_date ({w3c(until)})")
    if until - since > WINDOW:
        raise InvalidParameter(f"start_date to end_date may not span more than {WINDOW.days} days")
    return since, until


def _date_param(name: str, value: str | None, *, end: bool) -> datetime | None:
    """A W3C date or datetime (China time without a zone); an end date includes its whole day."""
    if not value:
        return None
    value = re.sub(r" (\d\d:?\d\d)$", r"+\1", value.strip())  # an unescaped + in the query string
    try:
        at = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
    except ValueError:
        raise InvalidParameter(
            f"{name}={value!r} is not a W3C date or datetime (e.g. 2026-03-02T09:30:00+08:00)"
        ) from None
    in_calendar(name, at)
    if not isinstance(at, datetime):
        return datetime.combine(at + timedelta(days=1 if end else 0), time(), tzinfo=SHANGHAI)
    at = at if at.tzinfo else at.replace(tzinfo=SHANGHAI)
    return at + timedelta(microseconds=1) if end else at  # the latest datetime is included


def _requests(
    request: Request, found: list[tuple[dict[str, Any], service.Extras]], user: User | None
) -> list[dict[str, Any]]:
    """Cases (summaries or details) as Open311 service requests; the public view for anonymous readers."""
    documents = [request_document(c, *extras, request) for c, extras in found]
    if user is None:  # only reached anonymously when the public read is on (api.access RULES)
        return [public_request(r, str(c["status"])) for r, (c, _) in zip(documents, found, strict=True)]
    return documents
