"""Units as GeoJSON and as downloads: load versions from the store, write them with geo.geojson."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
from sqlalchemy.orm import Session

from geo import crs, geojson
from store import units

# Formats a download can take, with the GDAL driver that writes each.
EXPORT_FORMATS = {"geojson": "GeoJSON", "gpkg": "GPKG"}
MEDIA_TYPES = {"geojson": geojson.MEDIA_TYPE, "gpkg": geojson.GEOPACKAGE_MEDIA_TYPE}
# The GDAL in our wheels writes GeoPackage 1.4, which the GDAL Debian 12 ships (3.6) and so QGIS on
# it read with a warning ("may only be partially supported"); 1.2 is read everywhere and holds all
# we write.
DATASET_OPTIONS = {"gpkg": {"VERSION": "1.2"}, "geojson": {}}


def unit_fields(unit: units.UnitVersion) -> dict[str, Any]:
    """A unit version's own fields, its validity as ISO 8601 text: what a download and the detail share."""
    return {
        "code": unit.code,
        "level": unit.level,
        "name": unit.name,
        "kind": unit.kind,
        "special_type": unit.special_type,
        "households": unit.households,
        "population": unit.population,
        "version": unit.version,
        "valid_from": unit.valid_from.isoformat(),
        "valid_to": unit.valid_to.isoformat() if unit.valid_to else None,
    }


def unit_properties(unit: units.UnitVersion) -> dict[str, Any]:
    """A unit's free attributes overlaid by its own fields (what a download carries, and re-imports)."""
    return {**unit.attributes, **unit_fields(unit)}


def unit_features(versions: list[units.UnitVersion]) -> list[dict[str, Any]]:
    """Unit versions as GeoJSON Features whose ids are their codes."""
    written = geojson.geometries([u.geometry for u in versions])
    return [geojson.feature(g, unit_properties(u), id=u.code) for u, g in zip(versions, written, strict=True)]


def units_collection(session: Session, *, declare_crs: bool = False, **filters: Any) -> dict[str, Any]:
    """Units matching `filters` (store.units.unit_versions') as a FeatureCollection.

    `declare_crs` adds the pre-RFC 7946 "crs" member naming EPSG:4490, which GDAL and our importer
    read (for downloads, which leave the service and lose the context of its documentation).
    """
    features = unit_features(units.unit_versions(session, **filters))
    members = {"crs": geojson.crs_member()} if declare_crs else {}
    return geojson.feature_collection(features, **members)


def unit_detail_feature(session: Session, code: str, at: datetime | None = None) -> dict[str, Any] | None:
    """A unit as a GeoJSON Feature with its parents, children count, staff and party-cell counts."""
    detail = units.unit_detail(session, code, at)
    if detail is None:
        return None
    unit = detail.unit
    properties = {
        **unit_fields(unit),
        "attributes": unit.attributes,
        "warnings": unit.warnings,
        "parents": detail.parents,
        "children_count": detail.children_count,
        "staff_counts": detail.staff_counts,
        "party_cell_counts": detail.party_cell_counts,
    }
    return geojson.feature(unit.geometry, properties, id=unit.code)


def check_format(fmt: str) -> None:
    """ValueError unless `fmt` is a download format."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}")


def export_units(session: Session, level: str, fmt: str, out: Path, at: datetime | None = None) -> int:
    """Write the current (or dated) units of one level to GeoJSON or GeoPackage; returns the count.

    GeoJSON is written by geo.geojson itself (the one writer, CRS declared); a GeoPackage by GDAL
    from the same features, so both files hold the same rounded coordinates.
    """
    check_format(fmt)
    collection = units_collection(session, level=level, at=at, declare_crs=True)
    count = len(collection["features"])
    if count == 0:
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    if fmt == "geojson":
        out.write_text(geojson.dumps(collection), encoding="utf-8")
        return count
    frame = gpd.GeoDataFrame.from_features(collection["features"], crs=crs.STORAGE_CRS)
    _write(frame, out, fmt, str(level))
    return count


def _write(frame: gpd.GeoDataFrame, out: Path, fmt: str, layer: str) -> None:
    options = DATASET_OPTIONS[fmt]
    frame.to_file(out, driver=EXPORT_FORMATS[fmt], engine="pyogrio", layer=layer, dataset_options=options)


def export_bytes(session: Session, level: str, fmt: str, at: datetime | None = None) -> bytes:
    """The download of `export_units` as bytes (a GeoPackage is a file GDAL must write first)."""
    check_format(fmt)
    if fmt == "geojson":
        return geojson.dumps(units_collection(session, level=level, at=at, declare_crs=True)).encode()
    with tempfile.TemporaryDirectory(prefix="gridmap-export-") as folder:
        out = Path(folder) / f"{level}.{fmt}"
        if export_units(session, level, fmt, out, at) == 0:
            # An empty layer still has its CRS and columns' place: GDAL writes one from nothing.
            _write(gpd.GeoDataFrame({"code": []}, geometry=[], crs=crs.STORAGE_CRS), out, fmt, str(level))
        return out.read_bytes()


def versions_of(session: Session, code: str) -> list[dict[str, Any]]:
    """Every version of a unit's boundary, oldest first: name, kind, validity and area in m²."""
    return units.versions_of(session, code)


def unit_exists(session: Session, code: str, at: datetime | None = None) -> bool:
    """Whether a unit with this code exists now (or at `at`)."""
    return code in units.units_at(session, [code], at)
