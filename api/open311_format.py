"""Open311 GeoReport v2 answers: JSON or the spec's XML, errors as the spec's error list, and the
public view of a service request (what an anonymous reader may see).

Every answer under /open311/ is in the format its path ends in (`.xml` → `text/xml; charset=utf-8`,
anything else JSON): the routes' own errors through Open311Route, and what happens before or
around a route (an unknown path, a wrong method, a body over the server's limit, an internal
error) through api.errors, which asks `is_open311` and answers with `error_response`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from api.errors import status_of
from cases.categories import Category, CategoryTable
from cases.lifecycle import CaseStatus, is_open
from cases.model import mask_phone
from cases.worktime import SHANGHAI
from errors import Refused, message_of
from services.open311 import COMMAND_CENTRE

PREFIX = "/open311/"
XML_TYPE = "text/xml"  # Starlette adds "; charset=utf-8", as the spec's examples are served

# XML: a list's items are elements named after its container, as the spec shows them.
ITEM_TAGS = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "endpoints": "endpoint",
    "formats": "format",
}
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")  # no XML 1.0 char

# Personal numbers a caller may have written into a description: mobile phones and ID card numbers.
PERSONAL_NUMBER = re.compile(r"(?<![0-9])(?:1[3-9][0-9]{9}|[0-9]{17}[0-9Xx])(?![0-9])")


def is_open311(path: str) -> bool:
    """Whether answers on this path are Open311's (errors included)."""
    return path.startswith(PREFIX)


def format_of(path: str) -> str:
    """The answer format a path asks for: xml for `.xml`, else json."""
    return "xml" if path.lower().endswith(".xml") else "json"


def open311_status(status: int) -> int:
    """The spec's status for one of ours (api.errors.STATUS_BY_KIND): it knows 400 for every bad
    parameter, not 422; the others are the same."""
    return 400 if status == 422 else status


def respond(fmt: str, root: str, payload: Any, status_code: int = 200) -> Response:
    """The payload as JSON, or as XML under `root` with the spec's element names."""
    if fmt == "xml":
        return Response(to_xml(root, payload), status_code=status_code, media_type=XML_TYPE)
    return JSONResponse(payload, status_code=status_code)


def error_response(
    fmt: str, status: int, description: str, headers: Mapping[str, str] | None = None
) -> Response:
    """The spec's error answer: a list of {code, description}."""
    response = respond(fmt, "errors", [{"code": status, "description": description}], status)
    response.headers.update(headers or {})
    return response


def to_xml(root: str, payload: Any) -> bytes:
    """A document: dicts become child elements, lists repeated items, None an empty element."""
    return ET.tostring(_element(root, payload), encoding="utf-8", xml_declaration=True)


def _element(tag: str, value: Any) -> ET.Element:
    element = ET.Element(tag)
    if isinstance(value, dict):
        element.extend(_element(key, item) for key, item in value.items())
    elif isinstance(value, list):
        element.extend(_element(ITEM_TAGS[tag], item) for item in value)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = NOT_XML.sub("\ufffd", str(value))  # ElementTree escapes the rest
    return element


def _status_of(exc: Exception) -> int:
    if isinstance(exc, HTTPException):
        return open311_status(exc.status_code)
    if isinstance(exc, RequestValidationError):
        return 400
    assert isinstance(exc, Refused)
    return open311_status(status_of(exc))


def _description_of(exc: Exception) -> str:
    if isinstance(exc, HTTPException):
        return str(exc.detail)
    if isinstance(exc, RequestValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in exc.errors())
    return message_of(exc)


class Open311Route(APIRoute):
    """A route whose errors are answered as the spec's error list, in the format its path asks for."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, with bad requests, refusals and unknown ids turned into Open311 errors."""
        handler = super().get_route_handler()
        known = (RequestValidationError, HTTPException, Refused)  # Refused: the whole vocabulary

        async def open311_handler(request: Request) -> Response:
            fmt = request.path_params.get("format")
            if fmt not in ("json", "xml"):
                return error_response("json", 404, f"unknown format {fmt!r}: end the path in .json or .xml")
            try:
                return await handler(request)
            except known as exc:  # the permission check's 401/403 included: it runs in here
                headers = exc.headers if isinstance(exc, HTTPException) else None
                return error_response(fmt, _status_of(exc), _description_of(exc), headers)

        return open311_handler


def public_text(value: str | None) -> str | None:
    """A citizen's text as anyone may read it: phone and ID card numbers in it masked."""
    if value is None:
        return None
    return PERSONAL_NUMBER.sub(lambda m: mask_phone(m.group()), value)


def public_request(request: dict[str, Any], status: str) -> dict[str, Any]:
    """A service request as an anonymous reader sees it: no history notes (staff write them, and
    they may name people), no photo link (photos need a sign-in), numbers in the description masked."""
    return {
        **request,
        "status_notes": status,
        "description": public_text(request["description"]),
        "media_url": None,
    }


def w3c(at: datetime | None) -> str | None:
    """A W3C datetime in China time, e.g. 2026-03-02T09:30:00+08:00."""
    return at.astimezone(SHANGHAI).isoformat(timespec="seconds") if at else None


def service_document(category: Category, table: CategoryTable) -> dict[str, Any]:
    """A category subclass as an Open311 service, grouped by its top class."""
    group = table.get(category.parent).name if category.parent else ""
    return {
        "service_code": category.code,
        "service_name": category.name,
        "description": category.name_en,
        "metadata": False,
        "type": "realtime",
        "keywords": ", ".join(k for k in (category.name, group, category.name_en.lower()) if k),
        "group": group,
    }


def request_document(
    case: dict[str, Any], note: str | None, photo: int | None, agency: str, request: Request
) -> dict[str, Any]:
    """A case (summary or detail) as an Open311 service request, for a signed-in reader."""
    status = CaseStatus(case["status"])
    media = request.url_for("get_photo", case_id=case["id"], seq=photo) if photo else None
    return {
        "service_request_id": str(case["id"]),
        "status": "open" if is_open(status) else "closed",
        "status_notes": f"{status}: {note}" if note else status.value,
        "service_name": case["category_name"],
        "service_code": case["category"],
        "description": case["description"],
        "agency_responsible": agency,
        "service_notice": notice(case, agency),
        "requested_datetime": w3c(case["reported_at"]),
        "updated_datetime": w3c(case["updated_at"]),
        "expected_datetime": w3c(case["stage_due_at"]),
        "address": case["address"],
        "address_id": None,
        "zipcode": None,
        "lat": case["lat"],
        "long": case["lon"],
        "media_url": str(media) if media else None,
    }


def notice(case: dict[str, Any], agency: str) -> str:
    """What the caller is told: the case number and who handles it (the queue named once)."""
    if case["assign_status"] == "unassigned":
        queue = (
            "the county command centre's unassigned" if agency == COMMAND_CENTRE else f"{agency}'s unassigned"
        )
        return f"received as case {case['number']}; no grid covers the location: it waits in {queue} queue"
    return f"received as case {case['number']}; assigned to {agency}"
