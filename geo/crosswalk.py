"""Relating a department's legacy grid layer to the unified grids (多网合一, issue 4 §3).

A legacy layer is read with the importer's readers and CRS rules but never stored as units. For
each legacy polygon: the unified grids it overlaps, with the overlap's area and its share of the
legacy polygon and of the grid, the communities it falls in, and whether it crosses a community
line. Overlaps holding less than `min_share` of the legacy polygon are digitising noise (two
layers never share edges exactly) and are left out, also of the community count.
Areas are m² in the metric CRS of geo.crs.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from geo import crs, geojson
from geo.codes import CODE_LENGTH, GridKind, Level
from geo.coverage import Unit
from geo.importer import ImportRejected, read_frame, source_crs
from geo.validation import ValidationReport, check_coordinates, clean_geometry

ID_COLUMNS = ("id", "code", "grid_id", "name")  # the first present names a legacy polygon
NAME_COLUMNS = ("name", "grid_name", "title")
COMMUNITY_LENGTH = CODE_LENGTH[Level.COMMUNITY]
CSV_COLUMNS = (
    "legacy_id",
    "legacy_name",
    "legacy_area_m2",
    "grid_code",
    "grid_kind",
    "overlap_m2",
    "share_of_legacy",
    "share_of_grid",
    "communities",
    "crosses_community",
)


@dataclass(frozen=True)
class LegacyPolygon:
    """One polygon of a department's old grid layer, in storage lon/lat."""

    id: str
    name: str | None
    geometry: shapely.Geometry


@dataclass(frozen=True)
class Overlap:
    """How much of a legacy polygon one unified grid holds."""

    grid: str
    kind: str | None
    area_m2: float
    share_of_legacy: float
    share_of_grid: float


@dataclass(frozen=True)
class CrosswalkEntry:
    """A legacy polygon and the unified grids it overlaps (largest first)."""

    legacy: LegacyPolygon
    area_m2: float
    overlaps: tuple[Overlap, ...]
    communities: tuple[str, ...]

    @property
    def crosses_community(self) -> bool:
        """True when the polygon lies in more than one community."""
        return len(self.communities) > 1


def _value(value: Any) -> Any:
    """A cell read by pandas as a plain value (NaN and None become None)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def read_legacy(path: Path, crs_name: str | None) -> list[LegacyPolygon]:
    """Read a legacy layer (GeoJSON/GeoPackage/Shapefile) into storage lon/lat; all-or-nothing."""
    frame = read_frame(path)
    report = ValidationReport()
    try:
        name = source_crs(path, frame, crs_name)
    except crs.CoordinateError as exc:
        report.errors.append(str(exc))
        raise ImportRejected(report) from None
    id_column = next((c for c in ID_COLUMNS if c in frame.columns), None)
    name_column = next((c for c in NAME_COLUMNS if c in frame.columns), None)
    polygons = []
    for number, (row, geometry) in enumerate(
        zip(frame.itertuples(index=False), np.asarray(frame.geometry.values, dtype=object), strict=True), 1
    ):
        values = row._asdict()
        ident = _value(values.get(id_column)) if id_column else None
        ident = str(ident) if ident is not None else str(number)
        label = f"feature {number} ({ident})"
        # Legacy layers are often untidy: repair rather than refuse, and say so.
        cleaned = clean_geometry(geometry, label, repair=True, report=report)
        if cleaned is None:
            continue
        stored = crs.geometry_to_storage(cleaned, name)
        if not check_coordinates(stored, label, report):
            continue
        legacy_name = _value(values.get(name_column)) if name_column else None
        polygons.append(LegacyPolygon(ident, None if legacy_name is None else str(legacy_name), stored))
    if not report.ok:
        raise ImportRejected(report)
    if not polygons:
        report.errors.append(f"{path.name}: the file has no features")
        raise ImportRejected(report)
    return polygons


def crosswalk(
    legacy: Sequence[LegacyPolygon], grids: Sequence[Unit], *, min_share: float
) -> list[CrosswalkEntry]:
    """For each legacy polygon, the unified grids it overlaps (share ≥ min_share) and its communities."""
    if not legacy:
        return []
    metric = crs.metric_crs_of(p.geometry for p in legacy)
    old = crs.to_metric(np.array([p.geometry for p in legacy], dtype=object), metric)
    new = (
        crs.to_metric(np.array([g.geometry for g in grids], dtype=object), metric) if grids else np.array([])
    )
    tree = shapely.STRtree(new)
    left, right = tree.query(old, predicate="intersects") if len(new) else (np.array([], int),) * 2
    shared = shapely.area(shapely.intersection(old[left], new[right])) if len(left) else np.array([])
    old_area, new_area = shapely.area(old), shapely.area(new) if len(new) else np.array([])
    found: dict[int, list[Overlap]] = {}
    for i, j, area in zip(left, right, shared, strict=True):
        share = area / old_area[i] if old_area[i] > 0 else 0.0
        if share < min_share:
            continue
        grid = grids[j]
        overlap = Overlap(grid.code, grid.kind, float(area), float(share), float(area / new_area[j]))
        found.setdefault(int(i), []).append(overlap)
    entries = []
    for i, polygon in enumerate(legacy):
        overlaps = tuple(sorted(found.get(i, []), key=lambda o: (-o.area_m2, o.grid)))
        # Special grids overlay base grids: the communities come from the base grids.
        communities = sorted({o.grid[:COMMUNITY_LENGTH] for o in overlaps if o.kind != GridKind.SPECIAL})
        entries.append(CrosswalkEntry(polygon, float(old_area[i]), overlaps, tuple(communities)))
    return entries


def _rows(entry: CrosswalkEntry) -> list[dict[str, Any]]:
    common = {
        "legacy_id": entry.legacy.id,
        "legacy_name": entry.legacy.name or "",
        "legacy_area_m2": round(entry.area_m2, 1),
        "communities": " ".join(entry.communities),
        "crosses_community": str(entry.crosses_community).lower(),
    }
    if not entry.overlaps:  # a legacy polygon no unified grid holds: a row that says so
        return [{**common, "grid_code": "", "grid_kind": "", "overlap_m2": 0, "share_of_legacy": 0}]
    return [
        {
            **common,
            "grid_code": o.grid,
            "grid_kind": o.kind or "",
            "overlap_m2": round(o.area_m2, 1),
            "share_of_legacy": round(o.share_of_legacy, 4),
            "share_of_grid": round(o.share_of_grid, 4),
        }
        for o in entry.overlaps
    ]


def write_csv(entries: Sequence[CrosswalkEntry], path: Path) -> int:
    """One row per (legacy polygon, unified grid); returns the number of rows."""
    rows = [row for entry in entries for row in _rows(entry)]
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def feature_collection(entries: Sequence[CrosswalkEntry]) -> dict[str, Any]:
    """One Feature per legacy polygon (EPSG:4490 lon/lat) with its grids, shares and communities."""
    return geojson.feature_collection(
        [
            geojson.feature(
                e.legacy.geometry,
                {
                    "legacy_id": e.legacy.id,
                    "legacy_name": e.legacy.name,
                    "area_m2": round(e.area_m2, 1),
                    "grids": [
                        {
                            "code": o.grid,
                            "kind": o.kind,
                            "overlap_m2": round(o.area_m2, 1),
                            "share_of_legacy": round(o.share_of_legacy, 4),
                            "share_of_grid": round(o.share_of_grid, 4),
                        }
                        for o in e.overlaps
                    ],
                    "communities": list(e.communities),
                    "crosses_community": e.crosses_community,
                },
            )
            for e in entries
        ]
    )


def write_geojson(entries: Sequence[CrosswalkEntry], path: Path) -> None:
    """Write the FeatureCollection of `feature_collection`."""
    path.write_text(geojson.dumps(feature_collection(entries)), encoding="utf-8")
