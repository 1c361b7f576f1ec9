"""Open311 GeoReport v2 answers and the request body of POST /open311/v2/requests.{format}.

The routes answer JSON or the spec's XML by the path's ending (api.open311_format) and build the
bytes themselves: these models document the JSON (the XML has the same elements) for the OpenAPI
document; `open311_answer` gives a route's `responses` entry.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from api.schemas.base import Answer
from api.schemas.refs import ref

XML_CONTENT = {"text/xml": {"schema": {"type": "string", "description": "The same, as the spec's XML"}}}


class Service(Answer):
    """A service: one per assignable category subclass."""

    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: str
    keywords: str
    group: str


class ServiceAttribute(Answer):
    """An attribute a service asks for beyond the standard parameters (the spec's shape)."""

    variable: bool
    code: str
    datatype: str = Field(description="string, number, datetime, text, singlevaluelist or multivaluelist")
    required: bool
    datatype_description: str | None
    order: int
    description: str
    values: list[dict[str, str]] | None = Field(None, description="key and name of each allowed value")


class ServiceDefinition(Answer):
    """A service's definition: no attributes beyond the standard parameters."""

    service_code: str
    attributes: list[ServiceAttribute]


class RequestCreated(Answer):
    """A request just created (or found again by its Idempotency-Key)."""

    service_request_id: str
    service_notice: str = Field(description="The case number and who handles it")
    account_id: str | None


class ServiceRequest(Answer):
    """A service request (a case) as the spec shows it; anonymous readers get no notes or photo."""

    service_request_id: str
    status: str = Field(description="open or closed")
    status_notes: str | None
    service_name: str
    service_code: str
    description: str
    agency_responsible: str
    service_notice: str
    requested_datetime: str | None
    updated_datetime: str | None
    expected_datetime: str | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float
    long: float
    media_url: str | None


class Endpoint(Answer):
    """A GeoReport endpoint of the discovery document."""

    specification: str
    url: str
    changeset: str
    type: str
    formats: list[str]


class Discovery(Answer):
    """The service discovery document."""

    changeset: str
    contact: str | None
    key_service: str
    endpoints: list[Endpoint]


class RequestIn(BaseModel):
    """A new service request, form-encoded (the spec; the form's charset is honoured) or as a JSON
    object of the same parameters. A location is required: requests are assigned to grids by it."""

    service_code: str = Field(description="From /open311/v2/services.json")
    lat: float = Field(description="WGS84 decimal degrees, or in `crs`")
    long: float
    crs: str | None = Field(None, description="Extension: wgs84 (default), gcj02, bd09 or cgcs2000")
    address_string: str | None = None
    description: str | None = Field(None, description="Default: the service's name")
    media_url: str | None = Field(None, description="An http(s) link, kept with the description")
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    confidential: bool | None = Field(None, description="Extension: hide the caller's name and phone")


def open311_answer(model: type[BaseModel], *, many: bool, status: int = 200) -> dict[int | str, Any]:
    """The `responses` entry of an Open311 route: the model (or a list of it) as JSON, and XML."""
    schema: dict[str, Any] = ref(model)
    if many:
        schema = {"type": "array", "items": schema}
    content = {"application/json": {"schema": schema}, **XML_CONTENT}
    return {status: {"description": "JSON or XML, by the path's ending", "content": content}}


def request_body() -> dict[str, Any]:
    """The documented request body of POST /open311/v2/requests.{format}: the spec's form. (A JSON
    object of the same parameters is read too; one model under two media types makes generated
    clients send both at once, so the JSON is said in words only.)"""
    form = {"schema": ref(RequestIn)}
    return {"requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": form}}}
