"""The one response class for GeoJSON answers: `application/geo+json` (RFC 7946 §12)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from geo import geojson


class GeoJSONResponse(JSONResponse):
    """A Feature or FeatureCollection written by geo.geojson, served as `application/geo+json`."""

    media_type = geojson.MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        """GeoJSON text as geo.geojson writes it (dates as ISO 8601)."""
        return geojson.dumps(content).encode("utf-8")
