"""Request bodies and answers that routes read or write themselves, documented for OpenAPI."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from api.schemas.refs import ref

PHOTO_TYPES = "image/*"  # JPEG, PNG, WebP or HEIC, checked from the bytes at intake (cases.photos)


def json_or_multipart(model: type[BaseModel], field: str) -> dict[str, Any]:
    """The `openapi_extra` of a route taking `model` as JSON, or as multipart/form-data with the
    JSON in form field `field` and photos (files) in `photos`."""
    multipart = {
        "type": "object",
        "required": [field],
        "properties": {
            field: {"type": "string", "description": f"The {model.__name__} as JSON"},
            "photos": {"type": "array", "items": {"type": "string", "format": "binary"}},
        },
    }
    content = {"application/json": {"schema": ref(model)}, "multipart/form-data": {"schema": multipart}}
    return {"requestBody": {"required": True, "content": content}}


def photo_content() -> dict[int | str, Any]:
    """The `responses` entry of a route answering a photo's bytes."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    described = "The photo as uploaded (JPEG, PNG, WebP or HEIC)"
    return {200: {"description": described, "content": {PHOTO_TYPES: binary}}}
