"""GeoJSON (RFC 7946) answers as models: a Feature and a FeatureCollection, geometry kept as given."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from api.schemas.base import Answer
from api.schemas.refs import ref

GEOJSON_MEDIA_TYPE = "application/geo+json"


class Geometry(Answer):
    """A GeoJSON geometry in lon/lat (EPSG:4490 for units, WGS84-compatible to the metre)."""

    type: str = Field(description="Point, LineString, Polygon, MultiPolygon, ...")
    coordinates: Any = Field(None, description="Nested arrays of [lon, lat]")


class Feature(Answer):
    """A GeoJSON Feature."""

    type: Literal["Feature"] = "Feature"
    id: int | str | None = None
    geometry: Geometry | None
    properties: dict[str, Any] | None


class FeatureCollection(Answer):
    """A GeoJSON FeatureCollection (members beside `features`, such as `total`, are foreign members)."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[Feature]


def geojson_content(model: type[Answer] = FeatureCollection) -> dict[int | str, Any]:
    """The OpenAPI `responses` entry of a route that answers GeoJSON bytes itself (a Response)."""
    content = {GEOJSON_MEDIA_TYPE: {"schema": ref(model)}}
    return {200: {"description": "A GeoJSON FeatureCollection", "content": content}}
