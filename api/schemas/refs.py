"""Models a route's documentation names by hand (a body the route reads itself, GeoJSON bytes),
collected here so that api.openapi puts them into the document's components."""

from __future__ import annotations

from pydantic import BaseModel

REF = "#/components/schemas/{model}"
NAMED: dict[str, type[BaseModel]] = {}


def ref(model: type[BaseModel]) -> dict[str, str]:
    """A reference to `model` in the document's components (added when the document is built)."""
    NAMED[model.__name__] = model
    return {"$ref": REF.format(model=model.__name__)}
