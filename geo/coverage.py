"""Coverage analysis (issue 4 §1): where a parent unit and its children break full coverage.

Pure shapely/numpy, no database. Work is done per parent unit, in the metric CRS of geo.crs
(areas in m²); findings come back with storage (EPSG:4490 lon/lat) geometry.

For one parent and its children:

- gap: the parent minus the union of its base children (special grids overlay, they do not
  cover); one finding per connected piece, units = (parent,).
- overlap: the shared area of two base siblings, or of two special siblings; units = the two.
- outside_parent: the part of a base child outside its parent; units = (child, parent).
- special_outside_community: the part of a special grid outside its community; (grid, community).
- sliver: any of the above that is nowhere wider than `sliver_width_m`, reported instead of it
  (detail `of` says which). Thinness is a negative-buffer test: a piece is a sliver when
  buffering it inwards by half the width leaves nothing, i.e. its largest inscribed circle is at
  most `sliver_width_m` across. Pieces whose area/perimeter exceeds the width cannot pass that
  test in practice and skip it (the buffer is the only costly step).
- Differences and intersections are computed on a `precision_m` grid (1 mm): noise thinner than
  that (an edge digitised twice, a chord of a projected edge) vanishes instead of joining two
  real gaps into one piece. Pieces nowhere wider than two such cells, or smaller than
  `min_area_m2`, are noise too, and dropped.

For grids (children of a community), from facts the caller supplies (None = unknown, not
checked): no_staff (neither a grid_chief nor a full_time worker), no_party_cell (neither a branch
nor a group, geo.people.ORGANISING_CELLS), size_norm (households of a base grid outside the norm
of its kind; special grids are exempt, grids without a household count are not judged). And
case_in_gap: an open, unassigned or snapped case (the caller picks those) inside a gap.

Speed: a group of children is first treated as a valid coverage (`coverage_union_all`, linear in
its edges); the result is trusted only if it is a valid polygon of the children's total area.
Otherwise `coverage_invalid_edges` names the children that break the coverage, and only those are
unioned the slow way and intersected with their neighbours (STRtree) to find overlaps.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import shapely
from shapely.errors import GEOSException

from geo import crs, geojson
from geo.codes import CODE_LENGTH, LEVEL_BY_LENGTH, PARENT_LENGTH, GridKind, Level
from geo.coverage_exact import groups_to_analyse
from geo.people import ORGANISING_CELLS, StaffRole

# Either of these makes a grid staffed (a grid chief or a full-time grid worker).
STAFFING_ROLES = frozenset({StaffRole.GRID_CHIEF.value, StaffRole.FULL_TIME.value})
ORGANISING_KINDS = frozenset(k.value for k in ORGANISING_CELLS)
# Parents above this level are always analysed: a street or community without children is a gap.
ALWAYS_ANALYSED = (Level.PROVINCE, Level.CITY, Level.COUNTY, Level.STREET, Level.COMMUNITY)
GRID_CODE_LENGTH = CODE_LENGTH[Level.GRID]
PARENT_OF_GRID_LENGTH = CODE_LENGTH[Level.COMMUNITY]
# Longest lon/lat segment projected as a straight line: its sag in Gauss-Krüger stays under 0.3 mm.
DENSIFY_DEG = 0.001


class Kind(StrEnum):
    """What a finding is about."""

    GAP = "gap"
    OVERLAP = "overlap"
    SLIVER = "sliver"
    OUTSIDE_PARENT = "outside_parent"
    SPECIAL_OUTSIDE_COMMUNITY = "special_outside_community"
    NO_STAFF = "no_staff"
    NO_PARTY_CELL = "no_party_cell"
    SIZE_NORM = "size_norm"
    CASE_IN_GAP = "case_in_gap"
    NOT_PATROLLED = "not_patrolled"  # a grid no patrol passed in N days (store.patrols)


# Kinds whose finding is an area (area_m2 set); case_in_gap is a point, the rest have no geometry.
AREA_KINDS = (Kind.GAP, Kind.OVERLAP, Kind.SLIVER, Kind.OUTSIDE_PARENT, Kind.SPECIAL_OUTSIDE_COMMUNITY)


@dataclass(frozen=True)
class Tolerances:
    """The thresholds of the analysis; make them with `Tolerances.from_settings` (one place)."""

    sliver_width_m: float
    min_area_m2: float
    precision_m: float
    urban_households: tuple[int, int]
    rural_households: tuple[int, int]
    patrol_stale_days: int | None = None  # report grids not patrolled for this long (None: do not)

    @classmethod
    def from_settings(cls, settings: Any) -> Tolerances:
        """Tolerances from geo.settings.Settings (GRIDMAP_COVERAGE_*, GRIDMAP_SIZE_NORM_*)."""
        return cls(
            sliver_width_m=settings.coverage_sliver_width_m,
            min_area_m2=settings.coverage_min_area_m2,
            precision_m=settings.coverage_precision_m,
            urban_households=(settings.size_norm_urban_min, settings.size_norm_urban_max),
            rural_households=(settings.size_norm_rural_min, settings.size_norm_rural_max),
            patrol_stale_days=getattr(settings, "patrol_stale_days", None),
        )

    def as_dict(self) -> dict[str, Any]:
        """For storing with a report."""
        return {
            "sliver_width_m": self.sliver_width_m,
            "min_area_m2": self.min_area_m2,
            "precision_m": self.precision_m,
            "urban_households": list(self.urban_households),
            "rural_households": list(self.rural_households),
        }


@dataclass(frozen=True)
class Unit:
    """A unit as the analysis sees it; people facts are None when unknown (then not checked)."""

    code: str
    geometry: shapely.Geometry  # storage lon/lat (EPSG:4490), polygonal
    kind: str | None = None  # urban, rural or special (geo.codes.GridKind)
    households: int | None = None
    staff: frozenset[str] | None = None  # roles present (geo.people.StaffRole values)
    party_cells: frozenset[str] | None = None  # kinds present (geo.people.PartyCellKind values)

    @property
    def level(self) -> Level:
        """The level, from the code's length (codes are checked where they come in)."""
        return LEVEL_BY_LENGTH[len(self.code)]


@dataclass(frozen=True)
class CasePoint:
    """An open case the caller wants checked against gaps (unassigned or snapped ones)."""

    id: int
    lon: float  # storage lon/lat
    lat: float


@dataclass(frozen=True)
class Finding:
    """One problem: its kind, the unit codes involved, where (storage lon/lat) and how big (m²)."""

    kind: Kind
    units: tuple[str, ...]
    geometry: shapely.Geometry | None
    area_m2: float | None
    detail: Mapping[str, Any] = field(default_factory=dict)
    new: bool | None = None  # set by a stored-report comparison (geo.coverage_compare); None = not compared


ProgressFn = Callable[[int, int], None]


# ---------------------------------------------------------------- the analysis


def analyse_parent(
    parent: Unit, children: Sequence[Unit], tolerances: Tolerances, *, cases: Sequence[CasePoint] = ()
) -> list[Finding]:
    """Every finding of one parent and its direct children (metric CRS chosen from the parent)."""
    return analyse_groups([(parent, list(children))], tolerances, cases=cases)


def analyse_tree(
    units: Sequence[Unit],
    tolerances: Tolerances,
    *,
    cases: Sequence[CasePoint] = (),
    progress: ProgressFn | None = None,
) -> list[Finding]:
    """Analyse every parent among `units` (a subtree): provinces, cities, counties, streets,
    communities, grids with children (the cities of a province, the counties of a city).

    A parent whose own parent is also in `units` is analysed once, as a parent; the top unit's
    relation to its own parent is not looked at.
    """
    by_code = {u.code: u for u in units}
    children: dict[str, list[Unit]] = defaultdict(list)
    for unit in units:
        # The parent's code (geo.codes.parent_code, without re-checking): a county's is its city's.
        above = unit.code[: PARENT_LENGTH.get(len(unit.code), 0)]
        if above in by_code:
            children[above].append(unit)
    groups = [
        (u, sorted(children.get(u.code, []), key=lambda c: c.code))
        for u in sorted(units, key=lambda u: u.code)
        if u.code in children or u.level in ALWAYS_ANALYSED
    ]
    return analyse_groups(groups, tolerances, cases=cases, progress=progress)


def analyse_groups(
    groups: Sequence[tuple[Unit, Sequence[Unit]]],
    tolerances: Tolerances,
    *,
    cases: Sequence[CasePoint] = (),
    progress: ProgressFn | None = None,
    metric: str | None = None,
) -> list[Finding]:
    """Analyse several (parent, children) groups (in `metric`, else the zone of the parents' centre): the
    groups tiled exactly are told apart for all at once first (geo.coverage_exact); the others'
    geometries are projected in one call and analysed."""
    if not groups:
        return []
    metric = metric or _metric_crs(groups)
    parents = [p for p, _ in groups]
    overlay = np.array([_is_overlay(p, c) for p, cs in groups for c in cs], dtype=bool)
    todo = groups_to_analyse(groups, overlay)
    todo_parents = [parents[g] for g in todo]
    todo_kids = [k for g in todo for k in groups[g][1]]
    # A straight lon/lat edge is a curve in metres: densify first, or a parent's long edge and its
    # children's shorter edges along it would differ by the sag of the curve (20 cm over 4 km).
    storage = shapely.segmentize(_array([u.geometry for u in [*todo_parents, *todo_kids]]), DENSIFY_DEG)
    projected = _valid(crs.to_metric(storage, metric)) if len(storage) else storage
    parent_m, child_m = projected[: len(todo)], projected[len(todo) :]
    case_index = _CaseIndex(cases, metric)

    found: list[_Piece] = []
    facts: list[Finding] = []
    start = 0
    for number, g in enumerate(todo, 1):
        kids = groups[g][1]
        geoms = child_m[start : start + len(kids)]
        start += len(kids)
        found.extend(_geometric(parents[g], parent_m[number - 1], kids, geoms, tolerances, case_index))
    for number, (parent, kids) in enumerate(groups, 1):
        facts.extend(_people_and_size(parent, kids, tolerances))
        if progress is not None and (number % 500 == 0 or number == len(groups)):
            progress(number, len(groups))
    return _to_storage(found, metric) + facts


def _array(geometries: Sequence[shapely.Geometry]) -> np.ndarray:
    """A 1-d object array of geometries (numpy would otherwise inspect each one)."""
    out = np.empty(len(geometries), dtype=object)
    out[:] = geometries
    return out


def _metric_crs(groups: Sequence[tuple[Unit, Sequence[Unit]]]) -> str:
    """One Gauss-Krüger zone for a run: the one of the centre of the parents' extent."""
    return crs.metric_crs_of(p.geometry for p, _ in groups)


def _valid(geometries: np.ndarray) -> np.ndarray:
    """Geometries made valid where they are not (a draft may hand in a bow-tie)."""
    bad = ~shapely.is_valid(geometries)
    if bad.any():
        geometries = geometries.copy()
        geometries[bad] = shapely.make_valid(geometries[bad])
    return geometries


@dataclass
class _Piece:
    """A geometric finding still in metric coordinates."""

    kind: Kind
    units: tuple[str, ...]
    geometry: shapely.Geometry
    area_m2: float
    detail: dict[str, Any]


class _CaseIndex:
    """Case points in metric coordinates, for the few gap pieces that need them."""

    def __init__(self, cases: Sequence[CasePoint], metric: str) -> None:
        self.cases = list(cases)
        if self.cases:
            xy = crs.from_storage(
                np.array([c.lon for c in self.cases]), np.array([c.lat for c in self.cases]), metric
            )
            self.points = shapely.points(np.column_stack(xy))
            self.tree = shapely.STRtree(self.points)

    def inside(self, area: shapely.Geometry) -> list[CasePoint]:
        """The cases covered by `area`."""
        if not self.cases:
            return []
        hits = self.tree.query(area, predicate="covers")
        return [self.cases[i] for i in sorted(hits)]


def _is_overlay(parent: Unit, child: Unit) -> bool:
    """A special grid overlays base grids; below a special grid (its micro-grids) it is plain cover."""
    return child.kind == GridKind.SPECIAL and parent.kind != GridKind.SPECIAL


def _geometric(
    parent: Unit,
    parent_geom: shapely.Geometry,
    kids: Sequence[Unit],
    geoms: np.ndarray,
    tol: Tolerances,
    cases: _CaseIndex,
) -> list[_Piece]:
    """Gaps, overlaps and overhangs of one group (metric)."""
    overlay = np.array([_is_overlay(parent, k) for k in kids], dtype=bool)
    codes = [k.code for k in kids]
    base_idx, special_idx = np.flatnonzero(~overlay), np.flatnonzero(overlay)
    union, pairs, tiles_exactly = _union_and_overlaps(parent_geom, geoms[base_idx], tol)
    pieces: list[_Piece] = []
    for i, j, shared in pairs:
        a, b = codes[base_idx[i]], codes[base_idx[j]]
        pieces += _pieces(Kind.OVERLAP, (a, b), shared, tol)
    for i, j, shared in _overlaps(geoms[special_idx], np.ones(len(special_idx), dtype=bool), tol):
        a, b = codes[special_idx[i]], codes[special_idx[j]]
        pieces += _pieces(Kind.OVERLAP, (a, b), shared, tol, between="special")

    gap = (
        shapely.Polygon()
        if tiles_exactly
        else shapely.difference(parent_geom, union, grid_size=tol.precision_m)
    )
    gap_pieces = _pieces(Kind.GAP, (parent.code,), gap, tol)
    pieces += gap_pieces

    check = special_idx if tiles_exactly else np.arange(len(kids))
    shapely.prepare(parent_geom)
    outside = check[~shapely.covers(parent_geom, geoms[check])] if len(check) else check
    for i in outside:
        kind = Kind.SPECIAL_OUTSIDE_COMMUNITY if overlay[i] else Kind.OUTSIDE_PARENT
        overhang = shapely.difference(geoms[i], parent_geom, grid_size=tol.precision_m)
        pieces += _pieces(kind, (codes[i], parent.code), overhang, tol)

    pieces += _cases_in_gaps(parent, gap_pieces, cases)
    return pieces


def _union_and_overlaps(
    parent: shapely.Geometry, geoms: np.ndarray, tol: Tolerances
) -> tuple[shapely.Geometry, list[tuple[int, int, shapely.Geometry]], bool]:
    """The union of a group, its overlapping pairs, and whether the union is the parent itself.

    Fast when the group is a valid coverage; exact either way.
    """
    if len(geoms) == 0:
        return shapely.Polygon(), [], False
    try:
        union = shapely.coverage_union_all(geoms)
    except GEOSException:  # it refuses some overlaps outright (duplicates)
        union = None
    total = float(shapely.area(geoms).sum())
    if union is not None and abs(float(shapely.area(union)) - total) <= tol.min_area_m2:
        # The usual case, children tiling their parent vertex for vertex, costs no overlay at all.
        if shapely.equals_exact(shapely.normalize(parent), shapely.normalize(union), 0.0):
            return union, [], True
        # CoverageUnion of overlapping or mismatched edges returns an invalid geometry; a valid
        # union of the children's total area proves they overlap nowhere.
        if shapely.is_valid(union):
            return union, [], False
    broken = ~shapely.is_empty(shapely.coverage_invalid_edges(geoms))
    good = shapely.coverage_union_all(geoms[~broken]) if (~broken).any() else shapely.Polygon()
    union = shapely.union_all(np.concatenate([[good], geoms[broken]]))
    return union, _overlaps(geoms, broken, tol), False


def _overlaps(
    geoms: np.ndarray, suspect: np.ndarray, tol: Tolerances
) -> list[tuple[int, int, shapely.Geometry]]:
    """Pairs (i < j) with at least one suspect member whose interiors overlap, with the shared area."""
    if len(geoms) < 2 or not suspect.any():
        return []
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms[suspect], predicate="intersects")
    left = np.flatnonzero(suspect)[left]
    i, j = np.minimum(left, right), np.maximum(left, right)
    keep = i < j
    pairs = np.unique(np.column_stack([i[keep], j[keep]]), axis=0)
    if len(pairs) == 0:
        return []
    # Interiors meeting in an area (DE-9IM II = 2): neighbours that only touch cost no overlay.
    real = shapely.relate_pattern(geoms[pairs[:, 0]], geoms[pairs[:, 1]], "2********")
    pairs = pairs[real]
    shared = shapely.intersection(geoms[pairs[:, 0]], geoms[pairs[:, 1]], grid_size=tol.precision_m)
    return [(int(a), int(b), s) for (a, b), s in zip(pairs, shared, strict=True)]


def _pieces(
    kind: Kind, units: tuple[str, ...], area: shapely.Geometry, tol: Tolerances, **detail: Any
) -> list[_Piece]:
    """Split an area into connected polygons, drop noise, and call the thin ones slivers."""
    if area.is_empty:
        return []
    parts = shapely.get_parts(area)
    parts = parts[shapely.get_type_id(parts) == 3]  # polygons only: touching lines and points are no area
    if len(parts) == 0:
        return []
    areas = shapely.area(parts)
    keep = areas >= max(tol.min_area_m2, 1e-12)
    # Nowhere wider than two precision cells: rounding noise left along an edge, however long.
    keep[keep] = ~_thin(parts[keep], areas[keep], 2 * tol.precision_m)
    parts, areas = parts[keep], areas[keep]
    thin = _thin(parts, areas, tol.sliver_width_m)
    return [
        _Piece(Kind.SLIVER, units, g, float(a), {"of": kind.value, **detail})
        if is_thin
        else _Piece(kind, units, g, float(a), dict(detail))
        for g, a, is_thin in zip(parts, areas, thin, strict=True)
    ]


def _thin(parts: np.ndarray, areas: np.ndarray, width: float) -> np.ndarray:
    """True for polygons nowhere wider than `width` (inward buffer by width/2 leaves nothing)."""
    thin = np.zeros(len(parts), dtype=bool)
    # The inscribed radius is at least about area/perimeter: a piece with area/perimeter above
    # the width is wide somewhere, without buffering it.
    maybe = areas / np.maximum(shapely.length(parts), 1e-12) <= width
    if maybe.any():
        thin[maybe] = shapely.is_empty(shapely.buffer(parts[maybe], -width / 2, quad_segs=2))
    return thin


def _cases_in_gaps(parent: Unit, gaps: Sequence[_Piece], cases: _CaseIndex) -> list[_Piece]:
    """One finding per case inside a gap (or gap sliver) of this parent."""
    found = []
    for piece in gaps:
        for case in cases.inside(piece.geometry):
            point = shapely.Point(case.lon, case.lat)
            found.append(_Piece(Kind.CASE_IN_GAP, (parent.code,), point, 0.0, {"case_id": case.id}))
    return found


def _people_and_size(parent: Unit, kids: Sequence[Unit], tol: Tolerances) -> list[Finding]:
    """Staff, organisation and size-norm findings of the grids among `kids`."""
    if len(parent.code) != PARENT_OF_GRID_LENGTH:  # grids are a community's children only
        return []
    norms = {GridKind.URBAN.value: tol.urban_households, GridKind.RURAL.value: tol.rural_households}
    found = []
    for kid in kids:
        if len(kid.code) != GRID_CODE_LENGTH:
            continue
        if kid.staff is not None and not (kid.staff & STAFFING_ROLES):
            found.append(Finding(Kind.NO_STAFF, (kid.code,), None, None, {"roles": sorted(kid.staff)}))
        if kid.party_cells is not None and not (kid.party_cells & ORGANISING_KINDS):
            found.append(
                Finding(Kind.NO_PARTY_CELL, (kid.code,), None, None, {"party_cells": sorted(kid.party_cells)})
            )
        norm = norms.get(kid.kind)
        if norm and kid.households is not None and not norm[0] <= kid.households <= norm[1]:
            detail = {"households": kid.households, "grid_kind": kid.kind, "norm": list(norm)}
            found.append(Finding(Kind.SIZE_NORM, (kid.code,), None, None, detail))
    return found


def _to_storage(pieces: Sequence[_Piece], metric: str) -> list[Finding]:
    """Metric pieces -> findings in storage lon/lat (case points are already in storage)."""
    if not pieces:
        return []
    areas = [p for p in pieces if p.kind != Kind.CASE_IN_GAP]
    converted = iter(crs.geometry_to_storage(_array([p.geometry for p in areas]), metric))
    return [
        Finding(p.kind, p.units, p.geometry, None, p.detail)
        if p.kind == Kind.CASE_IN_GAP
        else Finding(p.kind, p.units, next(converted), p.area_m2, p.detail)
        for p in pieces
    ]


# ---------------------------------------------------------------- presenting (comparing: coverage_compare)


def summary(findings: Iterable[Finding]) -> dict[str, dict[str, Any]]:
    """Count (and area in m², new count) per kind, every kind present in the answer."""
    out: dict[str, dict[str, Any]] = {
        k.value: {"count": 0, "new": 0, **({"area_m2": 0.0} if k in AREA_KINDS else {})} for k in Kind
    }
    for f in findings:
        entry = out[f.kind.value]
        entry["count"] += 1
        entry["new"] += bool(f.new)
        if f.area_m2 is not None and "area_m2" in entry:
            entry["area_m2"] += f.area_m2
    for entry in out.values():
        if "area_m2" in entry:
            entry["area_m2"] = round(entry["area_m2"], 2)
    return out


def feature(finding: Finding) -> dict[str, Any]:
    """A finding as a GeoJSON Feature: properties kind, units, area_m2, new and the detail."""
    properties = {
        "kind": finding.kind.value,
        "units": list(finding.units),
        "area_m2": None if finding.area_m2 is None else round(finding.area_m2, 2),
        "new": finding.new,
        **finding.detail,
    }
    return geojson.feature(finding.geometry, properties)


def feature_collection(findings: Iterable[Finding]) -> dict[str, Any]:
    """Findings as a GeoJSON FeatureCollection (EPSG:4490 lon/lat, within a metre of WGS84)."""
    return geojson.feature_collection(feature(f) for f in findings)
