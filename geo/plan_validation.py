"""Validation of a draft plan: invalid geometry and the coverage findings the draft makes new."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import shapely

from geo import coverage, crs, geojson
from geo.codes import CODE_LENGTH, GridKind, Level, level_of, parent_code
from geo.plan_impact import metric_crs_of
from geo.plans import PlanState, _difference, changes
from geo.validation import UnitFeature


@dataclass(frozen=True)
class Problem:
    """Something wrong with a draft, with where it is (storage lon/lat) and how big (m²)."""

    kind: str  # invalid_geometry | conflict | gap | overlap | outside_parent | special_outside_community
    #            | sliver | size_norm
    severity: str  # error (refuses publish) | warning
    units: tuple[str, ...]
    message: str
    geometry: shapely.Geometry | None = None
    area_m2: float | None = None


ERROR, WARNING = "error", "warning"
_REASON_POINT = re.compile(r"\[([-0-9.eE]+)\s+([-0-9.eE]+)\]")
# Coverage kinds a draft must not add (slivers and the size norm are warnings).
REFUSING_KINDS = (
    coverage.Kind.GAP,
    coverage.Kind.OVERLAP,
    coverage.Kind.OUTSIDE_PARENT,
    coverage.Kind.SPECIAL_OUTSIDE_COMMUNITY,
)


def _invalid(unit: UnitFeature) -> Problem | None:
    geometry = unit.geometry
    if geometry is None or geometry.is_empty:
        return Problem("invalid_geometry", ERROR, (unit.code,), f"{unit.code}: geometry is empty")
    if geometry.geom_type not in ("Polygon", "MultiPolygon"):
        return Problem(
            "invalid_geometry", ERROR, (unit.code,), f"{unit.code}: a {geometry.geom_type} is not an area"
        )
    if shapely.is_valid(geometry):
        return None
    reason = shapely.is_valid_reason(geometry)
    found = _REASON_POINT.search(reason)
    where = shapely.Point(float(found[1]), float(found[2])) if found else geometry
    return Problem(
        "invalid_geometry", ERROR, (unit.code,), f"{unit.code}: invalid geometry ({reason})", where
    )


def validate(
    base: Mapping[str, UnitFeature],
    state: PlanState,
    root_geometry: shapely.Geometry,
    tolerances: coverage.Tolerances,
) -> list[Problem]:
    """Every problem the draft adds: invalid geometry, and the coverage findings it makes new.

    Coverage (geo.coverage.analyse_parent) runs before and after the draft for every parent whose
    children it changes, and for every grid it changes (its micro-grids may now stick out). Only
    what is new is reported: a gap or overlap that was there before is not this draft's doing.
    Gaps, overlaps and overhangs refuse a publish; slivers and the size norm (of the grids the
    draft changes) are warnings.
    """
    changed = changes(base, state)
    problems = [p for c in changed if c.after is not None and (p := _invalid(c.after))]
    broken = {code for p in problems for code in p.units}
    metric = metric_crs_of([*base.values(), *state.units.values()])
    moved = {c.code for c in changed if c.geometry_changed}
    parents = sorted(
        {parent_code(c) for c in moved} | {c for c in moved if len(c) < CODE_LENGTH[Level.MICRO_GRID]}
    )
    for parent in parents:
        if parent in broken or (parent != state.root and parent not in state.units):
            continue  # an invalid parent is reported already; a retired one took its children along
        before = _analyse(base, state.root, root_geometry, parent, set(), tolerances)
        after = _analyse(state.units, state.root, root_geometry, parent, broken, tolerances)
        problems += _new_findings(before, after, metric, tolerances)
    problems += _size_norm(state, {c.code for c in changed if c.after is not None}, tolerances)
    return problems


def _analyse(units, root, root_geometry, parent, skip, tolerances) -> list[coverage.Finding]:
    """Coverage findings of one parent over one set of units (base or draft)."""
    if parent == root:
        parent_unit = coverage.Unit(root, root_geometry)
    elif parent in units:
        parent_unit = coverage.Unit(parent, units[parent].geometry, units[parent].kind)
    else:
        return []
    kids = [_coverage_unit(u) for c, u in sorted(units.items()) if parent_code(c) == parent and c not in skip]
    if not kids and level_of(parent) == Level.GRID:
        return []  # a grid without micro-grids: nothing to cover
    return coverage.analyse_parent(parent_unit, kids, tolerances)


def _coverage_unit(unit: UnitFeature) -> coverage.Unit:
    return coverage.Unit(unit.code, unit.geometry, unit.kind, unit.households)


def _new_findings(before, after, metric, tolerances) -> list[Problem]:
    """The parts of `after`'s area findings that no finding of the same kind had before."""
    problems = []
    for finding in after:
        if finding.kind not in coverage.AREA_KINDS or finding.geometry is None:
            continue
        kind = (
            finding.detail.get("of", finding.kind) if finding.kind == coverage.Kind.SLIVER else finding.kind
        )
        if kind == coverage.Kind.GAP and level_of(finding.units[0]) == Level.GRID:
            continue  # micro-grids are optional (domain.md §1): they need not cover their grid
        known = [b.geometry for b in before if b.geometry is not None and b.detail.get("of", b.kind) == kind]
        new = _difference(finding.geometry, shapely.union_all(known)) if known else finding.geometry
        new_m = crs.to_metric(new, metric)
        if new_m.area < max(tolerances.min_area_m2, 1e-6):
            continue
        thin = shapely.buffer(new_m, -tolerances.sliver_width_m / 2, quad_segs=2).is_empty
        problems.append(_area_problem(str(kind), finding.units, new, new_m.area, thin))
    return problems


def _m2(area: float) -> str:
    return f"{area:,.2f} m²" if area < 10 else f"{area:,.0f} m²"


def _area_problem(
    kind: str, units: tuple[str, ...], where: shapely.Geometry, area: float, thin: bool
) -> Problem:
    names = " and ".join(units)
    text = {
        "gap": f"a new gap of {_m2(area)} in {names}: no base grid covers it",
        "overlap": f"a new overlap of {_m2(area)} between {names}",
        "outside_parent": f"{units[0]} now reaches {_m2(area)} outside its parent {units[-1]}",
        "special_outside_community": f"special grid {units[0]} now reaches {_m2(area)} beyond {units[-1]}",
    }.get(kind, f"a new {kind} of {_m2(area)} ({names})")
    if thin:
        return Problem(
            "sliver", WARNING, units, f"{text} (a sliver: nowhere wider than the tolerance)", where, area
        )
    return Problem(kind, ERROR if kind in REFUSING_KINDS else WARNING, units, text, where, area)


def _size_norm(state: PlanState, codes: set[str], tolerances: coverage.Tolerances) -> list[Problem]:
    """Grids the draft creates or changes whose households fall outside the norm of their kind."""
    norms = {GridKind.URBAN: tolerances.urban_households, GridKind.RURAL: tolerances.rural_households}
    problems = []
    for code in sorted(codes):
        unit = state.units[code]
        norm = norms.get(unit.kind)
        if unit.level != Level.GRID or norm is None or unit.households is None:
            continue
        if not norm[0] <= unit.households <= norm[1]:
            estimate = " (estimated by area)" if code in state.estimated else ""
            message = (
                f"{code}: {unit.households} households{estimate}; "
                f"a {unit.kind} grid should have {norm[0]}–{norm[1]}"
            )
            problems.append(Problem("size_norm", WARNING, (code,), message, unit.geometry))
    return problems


def problems_geojson(problems: list[Problem]) -> dict[str, Any]:
    """Validation problems as a GeoJSON FeatureCollection (geometry = where the problem is)."""
    return geojson.feature_collection(
        geojson.feature(
            p.geometry,
            {
                "kind": p.kind,
                "severity": p.severity,
                "units": list(p.units),
                "message": p.message,
                "area_m2": round(p.area_m2, 1) if p.area_m2 is not None else None,
            },
        )
        for p in problems
    )
