"""The live map's point layers as GeoJSON: what each role may see of them, written by geo.geojson."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from access.roles import User
from cases.filters import CaseFilter
from cases.lifecycle import OPEN_STATUSES
from cases.rules import Rules
from errors import NotFound
from geo import geojson
from services import case_reads
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


MAX_CASES = 5000  # open cases drawn at once (the most urgent first); a county has hundreds
LIGHT_ORDER = {"red": 0, "yellow": 1, "green": 2}
CASE_PROPERTIES = (
    "number", "status", "category", "category_name", "description", "address", "urgent", "grid_code",
    "light", "overdue", "stage", "stage_due_at", "reported_at",
)  # fmt: skip


def open_cases(
    session: Session, rules: Rules, user: User | None, *, unit: str | None = None, near: str | None = None
) -> dict[str, Any]:
    """The view's open cases in the user's jurisdiction as a FeatureCollection, overdue first."""
    grids: list[str] | None = None
    if near is not None:
        grids = mapdata.grid_neighbourhood(session, near)
        if not grids:
            raise NotFound(f"no current grid with code {near}")
    f = CaseFilter(scope=user, status=OPEN_STATUSES, unit=unit, grids=grids, limit=MAX_CASES)
    total, items = case_reads.list_cases(session, f, rules)
    items.sort(key=_urgency)
    return geojson.feature_collection([_case_feature(c, rules) for c in items], total=total)


def _urgency(case: dict[str, Any]) -> tuple:
    due = case["stage_due_at"]
    return (
        not case["overdue"],
        LIGHT_ORDER.get(case["light"], 3),
        due is None,
        due.isoformat() if due else "",
    )


def _case_feature(case: dict[str, Any], rules: Rules) -> dict[str, Any]:
    top = rules.categories.get(case["category"][:2])
    properties = {k: case[k] for k in CASE_PROPERTIES}
    properties["top_name"] = top.name
    return geojson.feature(geojson.point(case["lon"], case["lat"]), properties, id=case["id"])
