"""Reading, converting and checking unit boundaries (GeoJSON, GeoPackage, Shapefile); writing exports.

An import is all-or-nothing: every feature is read, converted to storage coordinates and checked
(geo.validation) before one row is written (by services.imports); a single bad feature refuses
the whole file with a report that names each problem.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import pyproj
import shapely

from errors import Invalid
from geo import crs
from geo.codes import CodeError, level_of, parent_code
from geo.import_geometry import storage_geometries
from geo.settings import Settings
from geo.validation import (
    UnitFeature,
    ValidationReport,
    check_coordinates,
    clean_geometry,
    validate,
    with_inherited_kind,
)

KNOWN_PROPERTIES = ("code", "name", "kind", "special_type", "households", "population", "level")
# What the service's own exports add to each feature: read back as nothing, never as attributes
# (the version and its dates are the store's to decide; the feature id is the code).
SERVICE_PROPERTIES = ("version", "valid_from", "valid_to")


class ImportRejected(Invalid):
    """The file cannot be imported; `report` lists every problem. Nothing was stored."""

    def __init__(self, report: ValidationReport, message: str | None = None) -> None:
        self.report = report
        super().__init__(message or f"import refused: {len(report.errors)} problem(s), nothing stored")


def _geojson_crs_member(path: Path) -> dict | None:
    """The GeoJSON file's "crs" member, or None when it has none (RFC 7946 files do not)."""
    with path.open("rb") as fh:
        try:
            document = json.load(fh)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
    member = document.get("crs") if isinstance(document, dict) else None
    return member if isinstance(member, dict) else ({"properties": {"name": member}} if member else None)


def declared_crs(path: Path, frame: gpd.GeoDataFrame) -> str | None:
    """The canonical CRS the file itself names, None if it names none; refuses a name nobody knows."""
    if path.suffix.lower() not in (".geojson", ".json"):
        if frame.crs is None:
            return None
        name = frame.crs.to_wkt()
    else:
        member = _geojson_crs_member(path)
        if member is None:
            return None
        name = str((member.get("properties") or {}).get("name") or "").strip()
        # GDAL reads a "crs" member it does not recognise as WGS84 without a word: a GCJ-02 file
        # would land ~550 m off. Our own names (gcj02, bd09, …) first, then what PROJ knows.
        try:
            return crs.normalize_crs(name)
        except crs.CoordinateError:
            pass
    epsg = _epsg_named(name)
    if epsg:
        return crs.normalize_crs(epsg)
    raise crs.CoordinateError(
        f"{path.name} declares the coordinate system {name or member!r}, which is not recognised: "
        "pass --crs (wgs84, gcj02, bd09, cgcs2000 or an EPSG code such as EPSG:4547) "
        "with --override-crs to read it in that system"
    )


def _epsg_named(name: str) -> int | None:
    """The EPSG code PROJ finds for a CRS name, None when it finds none (or only a non-EPSG CRS)."""
    if not name:
        return None
    try:
        return pyproj.CRS.from_user_input(name).to_epsg(min_confidence=70)
    except pyproj.exceptions.CRSError:
        return None


def source_crs(path: Path, frame: gpd.GeoDataFrame, given: str | None, *, override: bool = False) -> str:
    """The CRS to read the file in: the one it declares, or the given one; a disagreement is refused."""
    try:
        declared = declared_crs(path, frame)
    except crs.CoordinateError:
        if given and override:
            return crs.normalize_crs(given)
        raise
    if given:
        name = crs.normalize_crs(given)
        # A file that says one system while the user says another is a mistake unless the user
        # confirms (GCJ-02 data mislabelled as WGS84 is common, so confirming is allowed).
        if declared and crs.epsg_of(declared) != crs.epsg_of(name) and not override:
            raise crs.CoordinateError(
                f"{path.name} declares {declared} but --crs says {given}: drop --crs to read it as "
                f"{declared}, or add --override-crs to read it as {given}"
            )
        return name
    if declared is None:
        raise crs.CoordinateError(
            f"{path.name} does not say which coordinate system it uses: pass --crs "
            "(wgs84, gcj02, bd09, cgcs2000 or an EPSG code such as EPSG:4547)"
        )
    return declared


def read_frame(path: Path) -> gpd.GeoDataFrame:
    """Read a vector file (GeoJSON, GeoPackage, Shapefile) into a GeoDataFrame."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return gpd.read_file(path, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as exc:
        raise ImportRejected(
            ValidationReport(
                errors=[f"{path.name}: cannot be read as GeoJSON, GeoPackage or Shapefile ({exc})"]
            )
        ) from None


def _plain(value: Any) -> Any:
    """A JSON-friendly Python value for a cell read by pandas (NaN becomes None)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return _plain(value.item())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _code_text(value: Any) -> str:
    value = _plain(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "" if value is None else str(value).strip()


def _count(value: Any) -> Any:
    value = _plain(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


def _text(value: Any) -> str | None:
    value = _plain(value)
    return None if value in (None, "") else str(value).strip()


def features_from_frame(
    frame: gpd.GeoDataFrame,
    crs_name: str,
    *,
    repair: bool,
    report: ValidationReport,
    positions: list[int] | None = None,
) -> list[UnitFeature]:
    """Convert rows to storage-coordinate UnitFeatures, recording per-feature problems in `report`;
    `positions` are the rows' places in the file (for messages) when `frame` is a part of it."""
    positions = positions if positions is not None else list(range(len(frame)))
    geometries = np.asarray(frame.geometry.values, dtype=object)
    converted = storage_geometries(geometries, crs_name)  # whole arrays; None: check it alone
    features = []
    ignored = {*KNOWN_PROPERTIES, *SERVICE_PROPERTIES, frame.geometry.name}
    extra_columns = [c for c in frame.columns if c not in ignored]
    # Column by column into plain lists: a row at a time (itertuples, _asdict) took seconds more.
    cells = {c: frame[c].tolist() for c in frame.columns if c != frame.geometry.name}
    absent = [None] * len(frame)
    codes, names, kinds, special_types, households, populations = (
        cells.get(c, absent) for c in ("code", "name", "kind", "special_type", "households", "population")
    )
    for i, (geometry, ready) in enumerate(zip(geometries, converted, strict=True)):
        code = _code_text(codes[i])
        label = f"feature {positions[i] + 1}" + (f" (code {code})" if code else "")
        if not code:
            report.errors.append(f"{label}: property 'code' is missing")
            continue
        try:
            level = level_of(code)
        except CodeError as exc:
            report.errors.append(f"{label}: {exc}")
            continue
        stored = ready if ready is not None else _stored_alone(geometry, label, crs_name, repair, report)
        if stored is None:
            continue
        features.append(
            UnitFeature(
                code=code,
                name=_text(names[i]) or "",
                level=level,
                geometry=stored,
                kind=_text(kinds[i]),
                special_type=_text(special_types[i]),
                households=_count(households[i]),
                population=_count(populations[i]),
                attributes=_attributes({c: cells[c][i] for c in extra_columns}, extra_columns, code),
                source=label,
            )
        )
    return features


def _stored_alone(
    geometry: Any, label: str, crs_name: str, repair: bool, report: ValidationReport
) -> shapely.Geometry | None:
    """One geometry cleaned, converted and checked, its problems (or repair) recorded; None if refused."""
    geometry = clean_geometry(geometry, label, repair=repair, report=report)
    if geometry is None:
        return None
    try:
        stored = crs.geometry_to_storage(geometry, crs_name)
    except crs.CoordinateError as exc:
        report.errors.append(f"{label}: {exc}")
        return None
    if not check_coordinates(stored, label, report):
        return None
    if not shapely.is_valid(stored):  # a projection can fold a polygon that was valid before
        return clean_geometry(stored, label, repair=repair, report=report)
    return stored


def _attributes(values: dict[str, Any], columns: list[str], code: str) -> dict[str, Any]:
    """A feature's free attributes: its other non-empty properties (an id equal to its code is none)."""
    plain = ((c, _plain(values[c])) for c in columns)
    found = {c: v for c, v in plain if v is not None}
    if _code_text(found.get("id")) == code:
        del found["id"]  # GDAL reads a GeoJSON feature's string id as a property called "id"
    return found


def read_source(
    path: Path, crs_name: str | None, *, settings: Settings, override_crs: bool = False
) -> tuple[gpd.GeoDataFrame, str]:
    """A file's rows as read and the CRS to read them in, once the file as a whole is acceptable
    (features, not too many, a code column, a known CRS); ImportRejected if not."""
    frame = read_frame(path)
    report = ValidationReport()
    if len(frame) == 0:
        report.errors.append(f"{path.name}: the file has no features")
        raise ImportRejected(report)
    if len(frame) > settings.max_import_features:
        report.errors.append(
            f"{path.name}: {len(frame)} features, more than the limit of "
            f"{settings.max_import_features} (GRIDMAP_MAX_IMPORT_FEATURES)"
        )
        raise ImportRejected(report)
    if "code" not in frame.columns:
        report.errors.append(
            f"{path.name}: features need a 'code' property (found: {', '.join(frame.columns)})"
        )
        raise ImportRejected(report)
    try:
        name = source_crs(path, frame, crs_name, override=override_crs)
    except crs.CoordinateError as exc:
        report.errors.append(str(exc))
        raise ImportRejected(report) from None
    return frame, name


def code_texts(frame: gpd.GeoDataFrame) -> list[str]:
    """The code of each row as the import reads it ("" when missing)."""
    return [_code_text(value) for value in frame["code"].tolist()]


def parent_codes(features: list[UnitFeature]) -> set[str]:
    """The parents the features need (stored, or in the same file)."""
    return {p for f in features if (p := parent_code(f.code))}


def check_features(
    features: list[UnitFeature],
    report: ValidationReport,
    stored_parents: Mapping[str, Any],
    stored_children: Mapping[str, Any],
    settings: Settings,
) -> tuple[list[UnitFeature], ValidationReport]:
    """Features with the kind they inherit, checked against their stored parents and the parents'
    other stored children (units with `.geometry`, `.kind`, `.special_type`); ImportRejected on any error."""
    in_batch = {f.code: f for f in features}
    features = [
        with_inherited_kind(f, *_parent_kind(in_batch, stored_parents, parent_code(f.code) or ""))
        for f in features
    ]
    checked = validate(
        features,
        {c: u.geometry for c, u in stored_parents.items()},
        tolerance_m=settings.outside_parent_tolerance_m,
        refuse_share=settings.outside_parent_refuse_share,
        stored_children={c: u.geometry for c, u in stored_children.items()},
    )
    checked.repairs[:0] = report.repairs
    if not checked.ok:
        raise ImportRejected(checked)
    return features, checked


def _parent_kind(
    in_batch: dict[str, UnitFeature], stored: Mapping[str, Any], code: str
) -> tuple[str | None, str | None]:
    parent = in_batch.get(code) or stored.get(code)
    return (parent.kind, parent.special_type) if parent else (None, None)
