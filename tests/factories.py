"""Small hand-made hierarchies near Xiangcheng for tests, written as real files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import box, mapping

COUNTY = "419999"
STREET = "419999001"
COMMUNITY = "419999001001"
X0, Y0 = 114.90, 33.40  # south-west corner of the test county
SIZE = 0.04  # degrees: about 3.7 km east-west, 4.4 km north-south


def grid_code(n: int) -> str:
    """Code of grid number n (1-based) in the test community."""
    return f"{COMMUNITY}{n:03d}"


def feature(code: str, geometry: Any, **properties: Any) -> dict:
    """A GeoJSON feature with a code and a default name."""
    geometry = mapping(geometry) if isinstance(geometry, shapely.Geometry) else geometry
    return {
        "type": "Feature",
        "geometry": geometry,
        "properties": {"code": code, "name": f"单元{code}", **properties},
    }


def hierarchy(grid_kind: str = "urban") -> list[dict]:
    """County = street = community = a square, cut into 2×2 base grids (001 NW, 002 NE, 003 SW, 004 SE)."""
    whole = box(X0, Y0, X0 + SIZE, Y0 + SIZE)
    half = SIZE / 2
    cells = [
        box(X0, Y0 + half, X0 + half, Y0 + SIZE),
        box(X0 + half, Y0 + half, X0 + SIZE, Y0 + SIZE),
        box(X0, Y0, X0 + half, Y0 + half),
        box(X0 + half, Y0, X0 + SIZE, Y0 + half),
    ]
    return [
        feature(COUNTY, whole, name="测试县"),
        feature(STREET, whole, name="测试街道"),
        feature(COMMUNITY, whole, name="测试社区"),
        *[
            feature(grid_code(i), cell, kind=grid_kind, households=400, population=1100)
            for i, cell in enumerate(cells, 1)
        ],
    ]


def write_geojson(path: Path, features: list[dict], crs: str | None = "EPSG:4490") -> Path:
    """Write a FeatureCollection; crs=None leaves the CRS undeclared."""
    collection: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if crs:
        collection["crs"] = {
            "type": "name",
            "properties": {"name": f"urn:ogc:def:crs:{crs.replace(':', '::')}"},
        }
    path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
    return path


# The main path of a case's lifecycle from `reported`, with what each move carries.
LIFECYCLE_WALK = [
    ("verified", {}),
    ("filed", {}),
    ("dispatched", {}),
    ("accepted", {}),
    ("in_progress", {}),
    ("handled", {"note": "已清运"}),
    ("checked", {}),
    ("closed", {}),
    ("revisited", {"rating": "satisfied"}),
]


def overlay_features() -> list[dict]:
    """Base grids 001-003 (004, south-east, left out: a gap), a school (005) over 001/003 and a
    micro-grid in 003."""
    half = SIZE / 2
    features = [x for x in hierarchy() if x["properties"]["code"] != grid_code(4)]
    school = box(X0 + 0.005, Y0 + half - 0.003, X0 + 0.008, Y0 + half + 0.003)
    features.append(feature(grid_code(5), school, kind="special", special_type="school", name="第一中学"))
    features.append(feature(grid_code(3) + "001", box(X0, Y0, X0 + 0.005, Y0 + 0.005), name="1号楼院"))
    return features
