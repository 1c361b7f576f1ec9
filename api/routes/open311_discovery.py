"""The Open311 service discovery document (http://wiki.open311.org/Service_Discovery): where the
GeoReport v2 endpoint is, in which formats, and whom to ask about it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from api.open311_format import Open311Route, respond
from api.schemas.open311 import Discovery, open311_answer

# When the endpoint's behaviour last changed (public read, errors in the spec's format: issue 17).
CHANGESET = "2026-12-05T00:00:00+08:00"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
KEY_SERVICE = (
    "No API key is needed: services, posting and reading requests are open (rate-limited); "
    "staff sign in with POST /auth/token and send the token as Authorization: Bearer"
)

router = APIRouter(prefix="/open311", tags=["open311"], route_class=Open311Route)


@router.get("/discovery.{format}", responses=open311_answer(Discovery, many=False))
def discovery(
    format: Annotated[str, Path(description="json or xml", pattern="^(json|xml)$")], request: Request
) -> Response:
    """The discovery document: one production GeoReport v2 endpoint, JSON and XML."""
    settings = request.app.state.settings
    endpoint = {
        "specification": SPECIFICATION,
        "url": str(request.base_url).rstrip("/") + "/open311/v2",
        "changeset": CHANGESET,
        "type": "production",
        "formats": ["text/xml", "application/json"],
    }
    document = {
        "changeset": CHANGESET,
        "contact": settings.open311_contact,
        "key_service": KEY_SERVICE,
        "endpoints": [endpoint],
    }
    return respond(format, "discovery", document)
