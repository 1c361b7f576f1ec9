"""GET /map/cases: the live map's open cases, one by one or in clusters (services.map_cases)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, WithJsonSchema

from api.schemas.base import Answer, standalone
from api.schemas.cases import CasePoint
from api.schemas.geojson import Feature, FeatureCollection


class ClusterProperties(Answer):
    """What a cluster of open cases says about them."""

    cluster: bool = Field(description="Always true: this point stands for `count` cases")
    count: int
    light: str | None = Field(description="The worst light among them: red, yellow, green (none: no clock)")
    lights: dict[str, int] = Field(description="How many are red, yellow, green and none")
    overdue: int = Field(description="How many are red")
    statuses: dict[str, int] = Field(description="How many are in each status")
    bbox: list[float] = Field(description="The cases' extent, minlon, minlat, maxlon, maxlat: zoom to it")


class CaseCluster(Feature):
    """Open cases near each other as one point, at the mean of their positions."""

    id: str = Field(description="z{zoom}:{column}:{row} of the cell: the same while the map pans")
    properties: ClusterProperties  # type: ignore[assignment]


def _schema(*models: type[Feature]) -> dict[str, Any]:
    return {"type": "array", "items": {"anyOf": [standalone(m.model_json_schema()) for m in models]}}


class MapCases(FeatureCollection):
    """The open cases of a view (or of a box at a zoom): cases, and clusters where many are close.
    Features are passed through as built (thousands of them: validating each costs more than it)."""

    total: int = Field(description="Open cases of the view or box that the user may see")
    overdue: int = Field(description="Of them, overdue (red); of those sent when the cases are capped")
    clustered: bool = Field(description="Whether some features are clusters (a box far out with many cases)")
    features: Annotated[list[dict[str, Any]], WithJsonSchema(_schema(CasePoint, CaseCluster))]  # type: ignore[assignment]
