"""A lifecycle move as the API receives it: JSON, or multipart with 处置后 photos; once per key.

`POST /cases/{id}/transitions` takes `application/json` (the move) or `multipart/form-data` with
the move as JSON in field `move` and photos in `photos` (stored as "after" photos: a handler's
proof of the work, kept apart from the reporter's "before" photos). With `Idempotency-Key`, a
move sent again (a phone that lost the answer and retries from its queue) is made only once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile

from api.errors import InvalidParameter, PayloadTooLarge, UnsupportedMediaType
from cases.lifecycle import CaseStatus, Rating
from cases.model import PhotoUpload

MOVE_JSON_LIMIT = 16 * 1024


@dataclass(frozen=True)
class MoveRequest:
    """The parsed move, its photos and a digest of both (for the idempotency check)."""

    body: BaseModel
    photos: list[PhotoUpload]
    digest: str


async def read_move(request: Request, model: type[BaseModel], photo_reader) -> MoveRequest:
    """The move (validated by `model`) and its checked photos, from JSON or multipart."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    settings = request.app.state.settings
    if kind == "application/json":
        raw = await request.body()
        if len(raw) > MOVE_JSON_LIMIT:
            raise PayloadTooLarge(f"a move is at most {MOVE_JSON_LIMIT:,} bytes of JSON")
        body, photos = _parse(model, raw), []
    elif kind == "multipart/form-data":
        form = await request.form(
            max_files=settings.max_photos + 1, max_fields=4, max_part_size=MOVE_JSON_LIMIT
        )
        field = form.get("move")
        if not isinstance(field, str):
            raise InvalidParameter("a multipart move needs a form field `move` holding the move as JSON")
        files = [f for f in form.getlist("photos") if isinstance(f, UploadFile)]
        if len(files) > settings.max_photos:
            raise InvalidParameter(f"at most {settings.max_photos} photos per move, not {len(files)}")
        body = _parse(model, field.encode())
        photos = [await photo_reader(f, settings) for f in files]
        if photos and body.to != CaseStatus.HANDLED:
            raise InvalidParameter("photos go with the move to handled (处置后 after photos)")
    else:
        raise UnsupportedMediaType(
            f"send the move as application/json or multipart/form-data, not {kind or 'no content type'}"
        )
    digest = hashlib.sha256(body.model_dump_json().encode())
    for photo in photos:
        digest.update(photo.sha256.encode())
    return MoveRequest(body, photos, digest.hexdigest())


def request_body_doc(model: type[BaseModel]) -> dict:
    """The OpenAPI request body of a move route: JSON, or multipart with the move and photos."""
    multipart = {
        "type": "object",
        "properties": {
            "move": {"type": "string", "description": "The move as JSON"},
            "photos": {"type": "array", "items": {"type": "string", "format": "binary"}},
        },
    }
    content = {
        "application/json": {"schema": _inlined(model.model_json_schema())},
        "multipart/form-data": {"schema": multipart},
    }
    return {"requestBody": {"required": True, "content": content}}


def _inlined(schema: dict) -> dict:
    """A model's JSON schema with its `$defs` put in place: a request body given by hand lives
    outside the document's components, where `#/$defs/...` references cannot be resolved."""
    defs = schema.pop("$defs", {})

    def resolve(node: object) -> object:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(schema)  # type: ignore[return-value]


def _parse(model: type[BaseModel], raw: bytes) -> BaseModel:
    try:
        return model.model_validate_json(raw)
    except ValidationError as e:
        raise RequestValidationError(e.errors(include_url=False, include_context=False)) from None


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
