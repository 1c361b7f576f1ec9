"""The OpenAPI document is complete enough to build on: valid, a model for every answer, the
service's real error shape and statuses, security as the service authenticates, and a client
generated from it (openapi-python-client, at test time) creates a case on a live server and reads
it back."""

from __future__ import annotations

import importlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from access.roles import Role
from api.access import RULES
from store import users
from tests import factories as f
from tests.conftest import DB_PREFIX, county_database
from tests.live import server, sign_in
from tests.photos import jpeg_with_gps

INSIDE = (f.X0 + 0.01, f.Y0 + 0.03)  # in grid 1 of the test county


def _named(schema: dict[str, Any]) -> bool:
    """Whether a schema is a model of the document (a reference, or a list or choice of them)."""
    if "$ref" in schema:
        return True
    if schema.get("type") == "array":
        return _named(schema.get("items", {}))
    choices = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    return bool(choices) and all(_named(s) for s in choices)


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def api_routes(app: FastAPI) -> Iterator[tuple[str, APIRoute]]:
    """(path, route) of every route of the API, those of included routers too (FastAPI 0.16x keeps
    an included router whole in app.routes: its routes are not APIRoutes there)."""
    for route in app.routes:
        if isinstance(route, APIRoute):
            yield route.path_format, route
        for context in getattr(route, "effective_route_contexts", list)():
            if isinstance(context.original_route, APIRoute) and context.include_in_schema:
                yield context.path, context.original_route


def test_the_openapi_document_passes_the_spec_validator(client):
    validate(client.get("/openapi.json").json())  # raises on any violation of OpenAPI 3.1


# Nested parts of answers whose shape is known: each is a model of the document, not a loose object.
TYPED_PARTS = [
    ("CaseDetail", "assignment"),
    ("PlanDetail", "conflicts"),
    ("PlanImpact", "units"),
    ("PlanImpact", "party_cells"),
    ("PlanImpact", "staff"),
    ("CaseMove", "from"),
    ("Publication", "cases"),
    ("ServiceDefinition", "attributes"),
    ("CoverageReportListed", "tolerances"),
    ("CoverageReportListed", "summary"),
    ("CoverageOut", "summary"),
    ("CoverageOut", "findings"),
    ("TaskDetail", "case"),
    ("TaskDetail", "photos_after"),
    ("QueueAnswer", "items"),
    ("PatrolFeature", "geometry"),
]


def _typed(schema: dict[str, Any]) -> bool:
    """Whether a part is a model (or a list, a map or a choice of models), not a loose object; a
    model may be inline (a part passed through unvalidated, documented by hand)."""
    if "$ref" in schema or schema.get("properties"):
        return True
    if schema.get("type") == "array":
        return _typed(schema.get("items", {}))
    if schema.get("type") == "object" and isinstance(schema.get("additionalProperties"), dict):
        return _typed(schema["additionalProperties"])
    choices = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    return bool(choices) and all(_typed(s) for s in choices)


def test_the_nested_parts_of_known_shape_are_models(client):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    loose = [(model, part) for model, part in TYPED_PARTS if not _typed(schemas[model]["properties"][part])]
    assert loose == []


def test_every_route_in_the_app_answers_with_a_documented_model(client):
    document = client.get("/openapi.json").json()
    checked = 0
    for path, route in api_routes(client.app):
        if not route.include_in_schema:
            continue
        for method in route.methods:
            operation = document["paths"][path][method.lower()]
            answers = {c: r for c, r in operation["responses"].items() if c.startswith("2") and c != "204"}
            assert answers or route.status_code == 204, (method, path)
            for code, answer in answers.items():
                assert answer.get("content"), (method, path, code)
                for media_type, content in answer["content"].items():
                    schema = content.get("schema") or {}
                    if _is_json(media_type):
                        assert _named(schema), (method, path, code, media_type, schema)
                    else:  # bytes: HTML, a tile, a photo, XML, an event stream
                        assert schema.get("type") == "string", (method, path, code, media_type)
            # A JSON route without a response model writes its answer itself and documents it by hand.
            answer_class = getattr(route.response_class, "value", route.response_class)  # a default
            json_route = issubclass(answer_class, JSONResponse) and route.status_code != 204
            assert route.response_model is not None or not json_route or route.responses, path
            checked += 1
    assert checked >= 50


def test_every_route_lists_the_errors_it_can_give_in_the_services_shape(client):
    document = client.get("/openapi.json").json()
    paths = document["paths"]

    def errors(method: str, path: str) -> set[int]:
        return {int(c) for c in paths[path][method]["responses"] if c[0] in "45"}

    assert errors("post", "/cases") == {401, 413, 415, 422, 429, 503}
    assert {403, 404, 409, 413, 415, 422} <= errors("post", "/cases/{case_id}/transitions")
    assert {401, 403, 404} <= errors("get", "/cases/{case_id}")
    assert {409} <= errors("post", "/plans/{plan_id}/publish")
    assert {429} <= errors("post", "/auth/token")
    assert {400, 413, 415, 429} <= errors("post", "/open311/v2/requests.{format}")
    assert 422 not in errors("post", "/open311/v2/requests.{format}")  # the spec knows 400
    for path, operations in paths.items():
        for method, operation in operations.items():
            for code, answer in operation["responses"].items():
                if code[0] not in "45":
                    continue
                schema = answer["content"]["application/json"]["schema"]
                expected = "Open311ErrorItem" if path.startswith("/open311/") else "ErrorOut"
                assert expected in json.dumps(schema), (method, path, code)
    assert "HTTPValidationError" not in document["components"]["schemas"]  # FastAPI's shape is not ours


def test_real_error_answers_match_the_documented_shape(client, county, session):
    document = client.get("/openapi.json").json()
    error = Draft202012Validator({"$ref": "#/components/schemas/ErrorOut", **document})
    users.add_user(session, "openapi.worker", "password-123", Role.FIELD_WORKER, f.grid_code(1), None)
    token = client.post("/auth/token", data={"username": "openapi.worker", "password": "password-123"})
    worker = {"Authorization": f"Bearer {token.json()['access_token']}"}
    anonymous = {"Authorization": ""}  # the client fixture signs in as an admin by default
    answers = {
        401: client.get("/stats", headers=anonymous),
        403: client.get("/stats", headers=worker),
        404: client.get("/cases/999999"),
        415: client.post("/cases", content=b"x", headers={"Content-Type": "text/plain"}),
        422: client.post("/cases", json={"lon": 1}),
    }
    case = client.post("/cases", json={"lon": INSIDE[0], "lat": INSIDE[1], "category": "0101",
                                       "description": "井盖缺失"}).json()  # fmt: skip
    answers[409] = client.post(f"/cases/{case['id']}/transitions", json={"to": "closed"})
    for status, answer in answers.items():
        assert answer.status_code == status, (status, answer.text)
        error.validate(answer.json())
    assert isinstance(answers[422].json()["detail"], list) and answers[409].json()["allowed"]


def test_security_is_declared_as_the_service_authenticates(client):
    document = client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "/auth/token"
    assert schemes["SessionCookie"] == {**schemes["SessionCookie"], "type": "apiKey", "in": "cookie",
                                        "name": "gridmap_session"}  # fmt: skip
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            rule = RULES[(method.upper(), path)]
            anonymous_too = rule.permission is None or rule.public_if is not None
            assert ({} in operation["security"]) == anonymous_too, (method, path)
            assert {"OAuth2PasswordBearer": []} in operation["security"], (method, path)
            assert {"SessionCookie": []} in operation["security"], (method, path)


# ---------------------------------------------------------------- a generated client


@pytest.fixture(scope="module")
def openapi_url(settings) -> str:
    """A committed database holding the test county, for a served process."""
    return county_database(settings, f"{DB_PREFIX}_openapi")


@pytest.fixture(scope="module")
def generated(openapi_url, tmp_path_factory) -> Iterator[tuple[str, Any]]:
    """A served app and the client package openapi-python-client generates from its document."""
    folder = tmp_path_factory.mktemp("client")
    with server(openapi_url) as base:
        (folder / "openapi.json").write_text(httpx.get(f"{base}/openapi.json").text, encoding="utf-8")
        tools = Path(sys.executable).parent  # the tool and the ruff it formats with, from this venv
        subprocess.run(
            [tools / "openapi-python-client", "generate", "--path", folder / "openapi.json",
             "--meta", "none", "--output-path", folder / "gridmap_client"],
            check=True, capture_output=True, env={**os.environ, "PATH": f"{tools}:{os.environ['PATH']}"},
        )  # fmt: skip
        sys.path.insert(0, str(folder))
        try:
            yield base, importlib.import_module("gridmap_client")
        finally:
            sys.path.remove(str(folder))
            for name in [m for m in sys.modules if m.split(".")[0] == "gridmap_client"]:
                del sys.modules[name]


def test_a_generated_client_creates_a_case_and_reads_it_back(generated, openapi_url):
    base, package = generated
    cases = importlib.import_module("gridmap_client.api.cases")
    models = importlib.import_module("gridmap_client.models")
    post = importlib.import_module(f"{cases.__name__}.post_case_cases_post")
    get = importlib.import_module(f"{cases.__name__}.get_case_cases_case_id_get")

    report = models.CaseIn(lon=INSIDE[0], lat=INSIDE[1], category="0101", description="井盖缺失 generated")
    made = post.sync_detailed(client=package.Client(base_url=base), body=report)
    assert made.status_code == 201, made.content
    case = made.parsed
    assert isinstance(case, models.ReportedCase) and case.grid_code == f.grid_code(1)

    token = sign_in(base, openapi_url, Role.DISPATCHER, f.COUNTY)["Authorization"].split()[1]
    staff = package.AuthenticatedClient(base_url=base, token=token)
    read = get.sync(client=staff, case_id=case.id)
    assert isinstance(read, models.CaseDetail)
    assert (read.number, read.description, read.status) == (case.number, "井盖缺失 generated", case.status)
    assert read.reported_at == case.reported_at and read.history[0].action

    anonymous = get.sync_detailed(client=package.Client(base_url=base), case_id=case.id)
    assert anonymous.status_code == 401 and isinstance(anonymous.parsed, models.ErrorOut)
    refused = post.sync_detailed(
        client=package.Client(base_url=base),
        body=models.CaseIn(lon=INSIDE[0], lat=INSIDE[1], category="9999", description="x"),
    )
    assert refused.status_code == 422 and "9999" in refused.parsed.detail


def test_a_generated_client_reports_with_a_photo_and_through_open311(generated):
    base, package = generated
    models = importlib.import_module("gridmap_client.models")
    post = importlib.import_module("gridmap_client.api.cases.post_case_cases_post")
    open311 = importlib.import_module(
        "gridmap_client.api.open311.post_request_open311_v2_requests_format_post"
    )
    types = importlib.import_module("gridmap_client.types")

    # Multipart: the report without a location, the photo's GPS places it.
    report = json.dumps({"category": "0101", "description": "井盖缺失 with a photo"})
    photo = types.File(payload=io.BytesIO(jpeg_with_gps(*INSIDE)), file_name="p.jpg", mime_type="image/jpeg")
    body = models.PostCaseCasesPostFilesBody(case=report, photos=[photo])
    made = post.sync_detailed(client=package.Client(base_url=base), body=body)
    assert made.status_code == 201, made.content
    assert made.parsed.grid_code == f.grid_code(1) and made.parsed.location_source == "photo_exif"
    assert [p.content_type for p in made.parsed.photos] == ["image/jpeg"]

    # Open311: the spec's form.
    form = models.RequestIn(service_code="0101", lat=INSIDE[1], long=INSIDE[0], description="井盖缺失 311")
    created = open311.sync_detailed("json", client=package.Client(base_url=base), body=form)
    assert created.status_code == 201, created.content
    answer = created.parsed[0]
    assert answer.service_request_id.isdigit() and "received as case" in answer.service_notice
