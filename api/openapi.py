"""The OpenAPI document: the routes' models, then what every route shares, added in one place.

FastAPI documents each route's parameters, body and answer model. Added here, from the one access
check (api.access.RULES) and the one error map (api.errors):
- security schemes as the service authenticates: a bearer token (OAuth2 password flow on
  /auth/token, so Swagger UI's Authorize button signs in) or the pages' session cookie; each route
  lists them, with `{}` beside them where anonymous callers are let in too;
- the error answers each route can give, in the service's shape (`{"detail": ...}`,
  api.schemas.errors; Open311's error list under /open311/): 401 (a bad token, on any route;
  no sign-in where one is needed), 403 (a role or jurisdiction refused), 404 (a path naming
  something), 413 (a body over the limit), 422 (bad parameters; 400 in Open311), 503 (database
  away); the rest (409, 415, 429, route-specific 403/404) each route declares with
  api.schemas.errors.error_responses;
- the components of models routes name by hand (request bodies read by the route itself).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.access import RULES, SESSION_COOKIE, Rule
from api.schemas.errors import ErrorOut, Open311ErrorItem, response_of
from api.schemas.refs import NAMED, REF

OAUTH2 = "OAuth2PasswordBearer"  # the bearer token, got from POST /auth/token
COOKIE = "SessionCookie"  # the pages' session (POST /auth/login from /login)
SCHEMES: dict[str, dict[str, Any]] = {
    OAUTH2: {
        "type": "oauth2",
        "description": "A bearer token: `Authorization: Bearer <access_token>` from POST /auth/token "
        "(username and password as a form); POST /auth/refresh renews it.",
        "flows": {"password": {"tokenUrl": "/auth/token", "refreshUrl": "/auth/refresh", "scopes": {}}},
    },
    COOKIE: {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "The session of the service's pages (HttpOnly), set by signing in at /login. "
        "A stale cookie on a read is taken as anonymous; on a write it is 401.",
    },
}
SIGNED_IN = [{OAUTH2: []}, {COOKIE: []}]

ALWAYS = (401, 503)  # a bad token is refused on every route; any route needs the database
BODY_METHODS = ("post", "put", "patch", "delete")


def build(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document with security, error answers and the hand-named components."""
    schema = get_openapi(
        title=app.title, version=app.version, summary=app.summary, description=app.description,
        routes=app.routes,
    )  # fmt: skip
    components = schema.setdefault("components", {})
    _add_models(components.setdefault("schemas", {}), [ErrorOut, Open311ErrorItem, *NAMED.values()])
    components["securitySchemes"] = SCHEMES
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            rule = RULES.get((method.upper(), path))  # OpenAPI paths are the routes' path formats
            if rule is not None:
                operation["security"] = security_of(rule)
            _add_errors(path, method, operation, rule)
            _describe_bytes(operation)
    _drop_unused(components["schemas"], schema)
    _unique_titles(components["schemas"])
    return schema


def security_of(rule: Rule) -> list[dict[str, list[str]]]:
    """Who may call: signed in (token or cookie), or also anonymous (`{}`) on public routes."""
    if rule.permission is None or rule.public_if is not None:
        return [{}, *SIGNED_IN]  # credentials are optional; a signed-in caller is identified
    return SIGNED_IN


def statuses_of(path: str, method: str, operation: dict[str, Any], rule: Rule | None) -> set[int]:
    """The error statuses a route can give, beyond those it declares."""
    statuses = set(ALWAYS)
    if rule is not None and rule.permission is not None:
        statuses.add(403)
    if "{" in path:
        statuses.add(404)  # a case outside the jurisdiction is 404 too; Open311: an unknown format
    if operation.get("parameters") or "requestBody" in operation:
        statuses.add(422)
    if "requestBody" in operation and method in BODY_METHODS:
        statuses.add(413)  # api.middleware.BodyLimit
    return statuses


def _add_errors(path: str, method: str, operation: dict[str, Any], rule: Rule | None) -> None:
    responses = operation.setdefault("responses", {})
    declared = {int(code) for code in responses if code.isdigit() and int(code) >= 400}
    for status in sorted(declared | statuses_of(path, method, operation, rule)):
        documented = responses.get(str(status), {})
        answer = response_of(status)
        answer.pop("model")
        if documented.get("description") not in (None, "Validation Error"):  # FastAPI's default 422 text
            answer["description"] = documented["description"]
        answer["content"] = _error_content(path)
        responses[str(status)] = answer
    if path.startswith("/open311/") and "422" in responses:
        responses["400"] = {**responses.pop("422"), "description": response_of(400)["description"]}
    if rule is not None and rule.page:  # a page sends people without a session to sign in
        location = {"Location": {"description": "/login?next=...", "schema": {"type": "string"}}}
        responses["303"] = {"description": "Not signed in: to the login page", "headers": location}
    operation["responses"] = dict(sorted(responses.items()))


def _describe_bytes(operation: dict[str, Any]) -> None:
    """A schema for answers of bytes documented by media type alone (HTML, a tile, CSV); a retry's
    200 documented by its description alone has the content of the route's 201."""
    responses = operation.get("responses", {})
    created = responses.get("201", {}).get("content")
    if created and "200" in responses and not responses["200"].get("content"):
        responses["200"]["content"] = created
    for code, response in responses.items():
        for media_type, content in (response.get("content") or {}).items():
            if code.startswith("2") and not content.get("schema"):
                text = media_type.startswith("text/") or "json" in media_type
                content["schema"] = {"type": "string"} if text else {"type": "string", "format": "binary"}


def _error_content(path: str) -> dict[str, Any]:
    if path.startswith("/open311/"):  # the spec's error list, in the format the path ends in
        errors = {"type": "array", "items": {"$ref": REF.format(model="Open311ErrorItem")}}
        return {"application/json": {"schema": errors}, "text/xml": {"schema": {"type": "string"}}}
    return {"application/json": {"schema": {"$ref": REF.format(model="ErrorOut")}}}


def _add_models(schemas: dict[str, Any], models: list[type[BaseModel]]) -> None:
    _, defs = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    for name, definition in defs.get("$defs", {}).items():
        schemas.setdefault(name, definition)


def _unique_titles(schemas: dict[str, Any]) -> None:
    """Models of one name in two modules (FastAPI keys them `module__path__Name`) get titles of
    their own: generated clients name their classes by title, and two of one name clash."""
    for name, definition in schemas.items():
        if "__" in name:
            parts = name.split("__")
            definition["title"] = parts[-2].title().replace("_", "") + parts[-1]


def _drop_unused(schemas: dict[str, Any], schema: dict[str, Any]) -> None:
    """FastAPI's default 422 models, replaced by the service's shape, go when nothing names them."""
    for name in ("HTTPValidationError", "ValidationError"):
        if name in schemas:
            rest = {k: v for k, v in schemas.items() if k != name}
            text = json.dumps({"paths": schema["paths"], "schemas": rest})
            if f'"{REF.format(model=name)}"' not in text:
                del schemas[name]
