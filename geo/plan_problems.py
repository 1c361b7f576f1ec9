"""A draft plan's validation problems as GeoJSON: where each is, what and how big (presentation,
no database; the API's errors, its plan routes and the CLI show them alike)."""

from __future__ import annotations

from typing import Any

from geo.plans import Problem, geojson_geometry


def problems_geojson(problems: list[Problem]) -> dict[str, Any]:
    """Validation problems as a GeoJSON FeatureCollection (geometry = where the problem is)."""
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": geojson_geometry(p.geometry),
                "properties": {
                    "kind": p.kind,
                    "severity": p.severity,
                    "units": list(p.units),
                    "message": p.message,
                    "area_m2": round(p.area_m2, 1) if p.area_m2 is not None else None,
                },
            }
            for p in problems
        ],
    }
