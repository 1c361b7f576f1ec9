"""Checks a batch of unit features must pass before anything is stored.

Pure functions over shapely geometries in storage coordinates: the importer reads and converts
files, the store writes; this module only says what is wrong (or repaired, or merely suspicious).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import shapely

from geo import crs
from geo.codes import CodeError, GridKind, Level, SpecialType, level_of, parent_code, required_parent

POLYGONAL = ("Polygon", "MultiPolygon")


@dataclass(frozen=True)
class UnitFeature:
    """One unit as read from a file: attributes plus a MultiPolygon in storage coordinates."""

    code: str
    name: str
    level: Level
    geometry: shapely.Geometry
    kind: str | None = None
    special_type: str | None = None
    households: int | None = None
    population: int | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""  # where it came from, for messages: "feature 12 (code 411681001002014)"


@dataclass
class ValidationReport:
    """Errors refuse the whole batch; repairs and warnings are reported, and warnings are stored."""

    errors: list[str] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    warnings: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing refuses the batch."""
        return not self.errors

    def warn(self, code: str, message: str) -> None:
        """Record a warning that will be stored with the unit's version."""
        self.warnings.setdefault(code, []).append(message)


def clean_geometry(
    geometry: shapely.Geometry | None, label: str, *, repair: bool, report: ValidationReport
) -> shapely.Geometry | None:
    """Return a valid MultiPolygon for `geometry`, or None after recording why it cannot be one."""
    if geometry is None or shapely.is_empty(geometry):
        report.errors.append(f"{label}: geometry is empty")
        return None
    if geometry.geom_type not in POLYGONAL:
        report.errors.append(
            f"{label}: geometry is a {geometry.geom_type}, a unit needs a Polygon or MultiPolygon"
        )
        return None
    if shapely.has_z(geometry):
        geometry = shapely.force_2d(geometry)
    if not shapely.is_valid(geometry):
        reason = shapely.is_valid_reason(geometry)
        if not repair:
            report.errors.append(f"{label}: invalid geometry ({reason}); fix it or import with --repair")
            return None
        fixed = _polygonal_part(shapely.make_valid(geometry))
        if fixed is None:
            report.errors.append(
                f"{label}: invalid geometry ({reason}) that make_valid cannot turn into an area"
            )
            return None
        report.repairs.append(
            f"{label}: repaired ({reason}) into {shapely.get_num_geometries(fixed)} polygon(s)"
        )
        geometry = fixed
    return _as_multipolygon(geometry)


def _polygonal_part(geometry: shapely.Geometry) -> shapely.Geometry | None:
    """The polygons in a (possibly mixed) geometry, or None when there are none."""
    parts = [g for g in shapely.get_parts(geometry) if g.geom_type in POLYGONAL and not g.is_empty]
    if not parts:
        return None
    return shapely.union_all(parts)


def _as_multipolygon(geometry: shapely.Geometry) -> shapely.Geometry:
    if geometry.geom_type == "Polygon":
        return shapely.MultiPolygon([geometry])
    return geometry


def check_coordinates(geometry: shapely.Geometry, label: str, report: ValidationReport) -> bool:
    """Record an error unless every vertex is a finite storage lon/lat inside the service area."""
    xy = shapely.get_coordinates(geometry)
    try:
        crs.check_plausible(xy[:, 0], xy[:, 1])
    except crs.CoordinateError as exc:
        report.errors.append(f"{label}: {exc}")
        return False
    return True


def check_attributes(feature: UnitFeature, report: ValidationReport) -> None:
    """Kind, special type, names and counts that fit the unit's level."""
    label = feature.source or f"unit {feature.code}"
    if not feature.name:
        report.errors.append(f"{label}: name is missing")
    if feature.level == Level.GRID and feature.kind is None:
        report.errors.append(f"{label}: a grid needs a kind ({', '.join(GridKind)})")
    if feature.kind is not None:
        if feature.level not in (Level.GRID, Level.MICRO_GRID):
            report.errors.append(f"{label}: only grids and micro-grids have a kind, not a {feature.level}")
        elif feature.kind not in set(GridKind):
            report.errors.append(f"{label}: kind {feature.kind!r} is not one of {', '.join(GridKind)}")
    if feature.kind == GridKind.SPECIAL and feature.special_type not in set(SpecialType):
        report.errors.append(
            f"{label}: a special grid needs special_type, one of {', '.join(SpecialType)} "
            f"(got {feature.special_type!r})"
        )
    if feature.kind != GridKind.SPECIAL and feature.special_type is not None:
        report.errors.append(f"{label}: special_type is only for special grids (kind is {feature.kind!r})")
    for name in ("households", "population"):
        value = getattr(feature, name)
        if value is not None and (not isinstance(value, int) or value < 0):
            report.errors.append(f"{label}: {name} must be a whole number ≥ 0 (got {value!r})")


def check_codes(features: Iterable[UnitFeature], report: ValidationReport) -> None:
    """Code format and uniqueness within the batch."""
    seen: dict[str, str] = {}
    for feature in features:
        label = feature.source or f"unit {feature.code}"
        try:
            level_of(feature.code)
        except CodeError as exc:
            report.errors.append(f"{label}: {exc}")
            continue
        if feature.code in seen:
            report.errors.append(f"{label}: code {feature.code} appears twice (also {seen[feature.code]})")
        seen[feature.code] = label


@dataclass(frozen=True)
class _Nested:
    """A child to hold against its parent's outline: from the batch, or stored under a parent in it."""

    code: str
    geometry: shapely.Geometry
    label: str
    stored: bool = False


def check_parents(
    features: list[UnitFeature],
    stored_parents: Mapping[str, shapely.Geometry],
    report: ValidationReport,
    *,
    metric_crs: str,
    tolerance_m: float,
    refuse_share: float,
    stored_children: Mapping[str, shapely.Geometry] | None = None,
) -> None:
    """Every parent exists (in the batch or the store) and (mostly) contains its children.

    A city or county whose parent is neither in the batch nor stored is a top unit (regions above
    the county are optional); when the parent is there, it is held against it like any other.
    A new outline of a stored unit is held against its stored children that the batch leaves as
    they are, with the same thresholds, so a parent cannot be redrawn away from its children.
    """
    in_batch = {f.code: f.geometry for f in features}
    nested = [
        _Nested(f.code, f.geometry, f.source or f"unit {f.code}")
        for f in features
        if _has_parent(f.code, in_batch, stored_parents)
    ]
    nested += [
        _Nested(code, geometry, f"stored unit {code}", stored=True)
        for code, geometry in sorted((stored_children or {}).items())
        if code not in in_batch and parent_code(code) in in_batch
    ]
    parents = [_parent_geometry(parent_code(n.code), in_batch, stored_parents) for n in nested]
    for child, parent in zip(nested, parents, strict=True):
        if parent is None:
            report.errors.append(
                f"{child.label}: parent unit {parent_code(child.code)} does not exist; "
                "import the parent first or in the same file"
            )
    pairs = [(n, p) for n, p in zip(nested, parents, strict=True) if p is not None]
    if not pairs:
        return
    child_m = crs.to_metric(np.array([n.geometry for n, _ in pairs]), metric_crs)
    parent_m = crs.to_metric(np.array([p for _, p in pairs]), metric_crs)
    # Only the children that are not covered need the expensive difference.
    outside_area = np.zeros(len(pairs))
    thick = np.zeros(len(pairs), dtype=bool)
    maybe_outside = ~shapely.covers(parent_m, child_m)
    if maybe_outside.any():
        outside = shapely.difference(child_m[maybe_outside], parent_m[maybe_outside])
        outside_area[maybe_outside] = shapely.area(outside)
        # What survives shrinking by the tolerance is a real overhang, not a rounding sliver.
        thick[maybe_outside] = ~shapely.is_empty(shapely.buffer(outside, -tolerance_m))
    child_area = shapely.area(child_m)
    for (child, _), outside, is_thick, area in zip(pairs, outside_area, thick, child_area, strict=True):
        _judge_overhang(child, outside, is_thick, area, report, refuse_share)


def _has_parent(code: str, in_batch: Mapping[str, object], stored: Mapping[str, object]) -> bool:
    """Whether `code` is to be held against a parent: always below the county, for a city or county
    only when its region is in the batch or stored."""
    if required_parent(code) is not None:
        return True
    parent = parent_code(code)
    return parent is not None and (parent in in_batch or parent in stored)


def _judge_overhang(
    child: _Nested, outside: float, is_thick: bool, area: float, report: ValidationReport, refuse_share: float
) -> None:
    """Refuse a child mostly outside its parent, warn about a real overhang."""
    parent = parent_code(child.code)
    if child.stored:
        if area > 0 and outside / area > refuse_share:
            report.errors.append(
                f"{child.label}: {outside / area:.0%} of it would lie outside the new outline of its "
                f"parent {parent}; redraw or import the children with their parent"
            )
        elif is_thick:
            report.warn(parent, f"the new outline leaves {outside:,.0f} m² of its child {child.code} outside")
        return
    if area > 0 and outside / area > refuse_share:
        report.errors.append(
            f"{child.label}: {outside / area:.0%} of it lies outside its parent {parent}; "
            "the code or the geometry is wrong"
        )
    elif is_thick:
        report.warn(child.code, f"reaches {outside:,.0f} m² outside its parent {parent}")


def _parent_geometry(
    code: str, in_batch: Mapping[str, shapely.Geometry], stored: Mapping[str, shapely.Geometry]
) -> shapely.Geometry | None:
    """The parent's geometry from the batch (which wins: it is about to be stored) or the store."""
    return in_batch[code] if code in in_batch else stored.get(code)


def validate(
    features: list[UnitFeature],
    stored_parents: Mapping[str, shapely.Geometry],
    *,
    tolerance_m: float,
    refuse_share: float,
    stored_children: Mapping[str, shapely.Geometry] | None = None,
) -> ValidationReport:
    """Run every check on a batch of already-cleaned features and return the report."""
    report = ValidationReport()
    check_codes(features, report)
    for feature in features:
        check_attributes(feature, report)
    if report.ok and features:
        check_parents(
            features,
            stored_parents,
            report,
            metric_crs=crs.metric_crs_of(f.geometry for f in features),
            tolerance_m=tolerance_m,
            refuse_share=refuse_share,
            stored_children=stored_children,
        )
    return report


def with_inherited_kind(
    feature: UnitFeature, parent_kind: str | None, parent_special_type: str | None
) -> UnitFeature:
    """A micro-grid without a kind takes its grid's kind (and special type)."""
    if feature.level == Level.MICRO_GRID and feature.kind is None and parent_kind is not None:
        return replace(feature, kind=parent_kind, special_type=parent_special_type)
    return feature
