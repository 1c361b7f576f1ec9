"""The service's error answers, documented once: `{"detail": ...}` as api.errors writes them, and the
statuses a route can give (`error_responses`, used by routers; api.openapi adds the ones every
route shares from its access rule)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.schemas.base import Answer


class ValidationIssue(Answer):
    """One problem of a request's parameters or body, as FastAPI (pydantic) reports it."""

    loc: list[str | int] = Field(description="Where: body, query, path or header, then the field")
    msg: str
    type: str


class ErrorOut(Answer):
    """Every error answer outside /open311/: `detail` says why. A 422 for a malformed request lists
    the problems; a refused domain rule is one sentence, and some add what the client needs next:
    `allowed` and `current` (an illegal move, 409), `conflicts` (a plan publish, 409), `problems`
    (an invalid plan, GeoJSON), `errors` (a rejected import)."""

    detail: str | list[ValidationIssue]


class Open311ErrorItem(Answer):
    """Open311's error: a list of these, in the format the path asks for (JSON or XML)."""

    code: int = Field(description="The HTTP status")
    description: str


# What each status means, in the words of the service's own errors (api/errors.py).
MEANING: dict[int, str] = {
    400: "Bad request (Open311's word for an unusable parameter)",
    401: "No valid credentials: the bearer token or session is unknown, expired or revoked, or the "
    "route needs a signed-in user (WWW-Authenticate: Bearer)",
    403: "Signed in, but the role may not do this, or what it names is outside the user's jurisdiction",
    404: "Not found (a case outside the user's jurisdiction is answered as missing)",
    409: "Refused by the current state: an illegal lifecycle move (with `allowed`), a plan closed or "
    "in conflict with a change made meanwhile (with `conflicts`)",
    413: "The body is over the size limit (the message gives it)",
    415: "The body's media type is not one the route reads",
    422: "A parameter or the body cannot be used (a list of problems, or one sentence)",
    429: "Too many requests from this client; Retry-After says when to try again",
    503: "The database is unavailable; Retry-After says when to try again",
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}
WWW_AUTHENTICATE = {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}
HEADERS: dict[int, dict[str, Any]] = {401: WWW_AUTHENTICATE, 429: RETRY_AFTER, 503: RETRY_AFTER}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route or router for these error statuses, in the service's shape."""
    return {status: response_of(status) for status in statuses}


def response_of(status: int) -> dict[str, Any]:
    """The OpenAPI response of one error status: its meaning, the error model and its headers."""
    answer: dict[str, Any] = {"model": ErrorOut, "description": MEANING[status]}
    if status in HEADERS:
        answer["headers"] = HEADERS[status]
    return answer
