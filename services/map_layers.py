"""The live map's party cells as GeoJSON: what each role may see of them (cases: services.map_cases)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from geo import geojson
from store import mapdata

# 0.001° is 111 m north-south, 93 m east-west at 33° N: the block, not the door (docs/security.md).
COARSE_DECIMALS = 3


def party_cells(
    session: Session, *, unit: str | None = None, codes: list[str] | None = None, exact: bool = False
) -> dict[str, Any]:
    """Party cells as a FeatureCollection of points: central households to ~100 m unless `exact`,
    the other cells counted at their unit, never named."""
    decimals = geojson.DECIMALS if exact else COARSE_DECIMALS
    features = []
    for p in mapdata.party_points(session, unit=unit, codes=codes):
        properties: dict[str, Any] = {"kind": p.kind, "unit_code": p.unit_code}
        if p.counts is not None:
            properties["counts"] = p.counts
        # Only a household's place is private; a unit's counting point is a point of its outline.
        places = decimals if p.kind == "central_household" else geojson.DECIMALS
        features.append(geojson.feature(geojson.point(p.lon, p.lat, places), properties))
    return geojson.feature_collection(features)
