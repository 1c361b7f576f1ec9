"""GeoJSON (RFC 7946) answers as models: a Feature and a FeatureCollection, geometry kept as given."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema

from api.schemas.base import Answer, SometimesAbsent, standalone
from api.schemas.refs import ref

GEOJSON_MEDIA_TYPE = "application/geo+json"


class Geometry(SometimesAbsent):
    """A GeoJSON geometry in lon/lat (EPSG:4490 for units, WGS84-compatible to the metre)."""

    type: str = Field(description="Point, LineString, Polygon, MultiPolygon, ...")
    coordinates: Any = Field(None, description="Nested arrays of [lon, lat]")


class Feature(Answer):
    """A GeoJSON Feature (`id` where the collection gives one)."""

    type: Literal["Feature"] = "Feature"
    id: int | str | None = None
    geometry: Geometry | None
    properties: dict[str, Any] | None


def features(item: type[Feature]) -> Any:
    """A collection's `features`, documented as `item`s and passed through as they are: a
    collection holds thousands of features (4,422 party cells), and validating each as a model
    made the answer 30 times slower to write than the features themselves."""
    return Annotated[list[dict[str, Any]], WithJsonSchema({"type": "array", "items": _inlined(item)})]


def _inlined(model: type[Feature]) -> dict[str, Any]:
    """`model`'s JSON schema standing alone (api.schemas.base.standalone)."""
    return standalone(model.model_json_schema())


Features = features(Feature)


class FeatureCollection(Answer):
    """A GeoJSON FeatureCollection (members beside `features`, such as `total`, are foreign members)."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: Features


def geojson_content(model: type[Answer] = FeatureCollection) -> dict[int | str, Any]:
    """The OpenAPI `responses` entry of a route that answers GeoJSON bytes itself (a Response)."""
    content = {GEOJSON_MEDIA_TYPE: {"schema": ref(model)}}
    return {200: {"description": "A GeoJSON FeatureCollection", "content": content}}
