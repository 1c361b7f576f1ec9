"""Draft plans (redrawing): the state a draft proposes, its edits' vocabulary, code allocation, changes.

Pure functions over shapely geometries in storage lon/lat (EPSG:4490). The edits themselves are
applied in geo.plan_edits, households moved by area in geo.plan_impact, drafts checked in
geo.plan_validation, and what a publish does is computed in geo.plan_publication; services.plans
loads a plan's units from the store, replays its edits and writes what a publish decides.

Codes of new units are allocated under their parent in reading order (rows north→south,
west→east within a row, domain.md §1), lowest free number first, skipping every code ever used: a
retired code is never given out again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
import shapely.errors
import shapely.ops

from errors import Conflict, Invalid, NotFound
from geo import geojson
from geo.codes import GridKind, Level, parent_code
from geo.validation import UnitFeature

if TYPE_CHECKING:
    from geo.plan_validation import Problem

CHILD_LEVEL = {
    Level.COUNTY: Level.STREET,
    Level.STREET: Level.COMMUNITY,
    Level.COMMUNITY: Level.GRID,
    Level.GRID: Level.MICRO_GRID,
}
BASE_KINDS = (GridKind.URBAN, GridKind.RURAL, None)  # what covers a parent; special grids overlay
ATTRIBUTES = ("name", "kind", "special_type", "households", "population")
COUNTS = ("households", "population")


class Operation(StrEnum):
    """What an edit does."""

    REPLACE = "replace"
    SPLIT = "split"
    MERGE = "merge"
    MOVE = "move"
    CREATE = "create"
    RETIRE = "retire"
    RESHAPE = "reshape"  # move the boundary two neighbours share (geo.reshape)


class EditError(Invalid):
    """An edit that cannot be applied to the draft; the message says why."""


class CodeTaken(EditError):
    """A code this draft allocated has been used since (by another plan or an import)."""

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(f"code {code}, allocated by this draft, has been used since")


class PlanNotFound(NotFound):
    """No plan with that id."""


class PlanClosed(Conflict):
    """The plan is published or abandoned: it can no longer change."""


class PlanConflict(Conflict):
    """Units the draft touches changed since it was opened (or codes it allocated were used)."""

    def __init__(self, message: str, conflicts: list[dict[str, Any]]) -> None:
        self.conflicts = conflicts
        super().__init__(message)


class PlanInvalid(Invalid):
    """The draft has problems that refuse a publish; `problems` lists them with their locations."""

    def __init__(self, message: str, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(message)


@dataclass(frozen=True)
class Edit:
    """One edit: an operation, its parameters (codes, attributes) and a geometry in storage lon/lat."""

    operation: Operation
    params: Mapping[str, Any]
    geometry: shapely.Geometry | None = None


@dataclass
class PlanState:
    """The units below a plan's unit as the draft proposes them."""

    root: str
    units: dict[str, UnitFeature]
    taken: set[str]  # every code ever used under the root: never allocated again
    retired: set[str] = field(default_factory=set)
    successors: dict[str, str] = field(default_factory=dict)  # retired code -> who took its area
    explicit: set[str] = field(default_factory=set)  # codes whose counts an edit gave
    estimated: set[str] = field(default_factory=set)  # codes whose counts are area estimates
    notes: list[str] = field(default_factory=list)

    def copy(self) -> PlanState:
        """An independent copy (edits never change the state they are given)."""
        return PlanState(
            self.root,
            dict(self.units),
            set(self.taken),
            set(self.retired),
            dict(self.successors),
            set(self.explicit),
            set(self.estimated),
            list(self.notes),
        )

    def unit(self, code: str) -> UnitFeature:
        """A unit of the draft, or EditError naming what exists."""
        if code not in self.units:
            where = "was retired in this draft" if code in self.retired else f"is not below {self.root}"
            raise EditError(f"unit {code} {where}")
        return self.units[code]

    def children(self, code: str) -> list[UnitFeature]:
        """The draft's units directly below `code`, by code."""
        return [u for c, u in sorted(self.units.items()) if parent_code(c) == code]


# ---------------------------------------------------------------- geometry helpers


def as_multipolygon(geometry: shapely.Geometry) -> shapely.Geometry:
    """The polygonal part of `geometry` as a MultiPolygon (empty when there is none)."""
    if geometry.geom_type == "MultiPolygon":
        return geometry
    if geometry.geom_type == "Polygon":
        return shapely.MultiPolygon([geometry])
    parts = [g for g in shapely.get_parts(geometry) if g.geom_type in ("Polygon", "MultiPolygon")]
    polygons = [p for g in parts for p in shapely.get_parts(g)] if parts else []
    return shapely.MultiPolygon(polygons)


def _clean(geometry: shapely.Geometry) -> shapely.Geometry:
    """A valid MultiPolygon after overlay operations (which can leave slivers of lines)."""
    if not shapely.is_valid(geometry):
        geometry = shapely.make_valid(geometry)
    return as_multipolygon(geometry)


def _difference(a: shapely.Geometry, b: shapely.Geometry) -> shapely.Geometry:
    """a − b as a valid MultiPolygon, robust to the near-coincident edges of reprojected findings."""
    try:
        return _clean(shapely.difference(a, b))
    except shapely.errors.GEOSException:
        # A fixed-precision overlay (1e-9°, about 0.1 mm) does not fail on nearly coincident edges.
        return _clean(shapely.difference(shapely.make_valid(a), shapely.make_valid(b), grid_size=1e-9))


def reading_order(geometries: list[shapely.Geometry]) -> list[int]:
    """Indices in reading order: rows north→south, west→east within a row.

    A row is led by the northernmost unit not yet placed; a unit joins it when the middle of its
    latitude range lies within the leader's. A vertical cut reads west→east, a horizontal one
    north→south.
    """
    bounds = np.array([g.bounds for g in geometries]) if geometries else np.zeros((0, 4))
    left = sorted(range(len(geometries)), key=lambda i: (-bounds[i, 3], bounds[i, 0]))
    order: list[int] = []
    while left:
        leader = left[0]
        row = [i for i in left if bounds[leader, 1] <= (bounds[i, 1] + bounds[i, 3]) / 2 <= bounds[leader, 3]]
        order += sorted(row, key=lambda i: ((bounds[i, 0] + bounds[i, 2]) / 2, i))
        left = [i for i in left if i not in row]
    return order


def allocate(parent: str, count: int, taken: set[str]) -> list[str]:
    """The lowest `count` free codes under `parent` (001 upwards), skipping every code ever used."""
    free = [f"{parent}{n:03d}" for n in range(1, 1000) if f"{parent}{n:03d}" not in taken]
    if len(free) < count:
        raise EditError(f"no free codes left under {parent}")
    return free[:count]


class _Allocation:
    """The codes one edit allocates; on a replay, the ones it allocated when it was made."""

    def __init__(self, stored: list[str] | None) -> None:
        self.stored = list(stored) if stored is not None else None
        self.codes: list[str] = []

    def take(self, state: PlanState, parent: str, geometries: list[shapely.Geometry]) -> list[str]:
        """Codes for new units under `parent`, in reading order of `geometries`."""
        if self.stored is not None:
            codes = self.stored[len(self.codes) : len(self.codes) + len(geometries)]
            if len(codes) != len(geometries) or any(parent_code(c) != parent for c in codes):
                raise EditError("the edit now makes other units than when it was made; delete it and redo it")
            taken = [c for c in codes if c in state.taken]
            if taken:
                raise CodeTaken(taken[0])
        else:
            fresh = allocate(parent, len(geometries), state.taken)
            codes = [""] * len(geometries)
            for code, index in zip(fresh, reading_order(geometries), strict=True):
                codes[index] = code
        state.taken.update(codes)
        self.codes += codes
        return codes


# ---------------------------------------------------------------- changes and counts


@dataclass(frozen=True)
class Change:
    """One unit the draft creates, changes or retires."""

    code: str
    change: str  # created | changed | retired
    before: UnitFeature | None
    after: UnitFeature | None
    geometry_changed: bool


def _same_geometry(a: shapely.Geometry, b: shapely.Geometry) -> bool:
    return bool(shapely.equals_exact(shapely.normalize(a), shapely.normalize(b), tolerance=1e-10))


def changes(base: Mapping[str, UnitFeature], state: PlanState) -> list[Change]:
    """What the draft does to each unit, by code."""
    out = []
    for code in sorted(set(base) | set(state.units)):
        before, after = base.get(code), state.units.get(code)
        if before is None and after is not None:
            out.append(Change(code, "created", None, after, True))
        elif after is None and before is not None:
            out.append(Change(code, "retired", before, None, True))
        elif before is not None and after is not None:
            moved = not _same_geometry(before.geometry, after.geometry)
            if moved or any(getattr(before, a) != getattr(after, a) for a in ATTRIBUTES):
                out.append(Change(code, "changed", before, after, moved))
    return out


# ---------------------------------------------------------------- presentation


def geojson_geometry(geometry: shapely.Geometry | None) -> dict | None:
    """A GeoJSON geometry in storage lon/lat, written by the one writer (geo.geojson)."""
    return geojson.geometry(geometry)


def unit_properties(unit: UnitFeature) -> dict[str, Any]:
    """A unit's attributes for JSON answers."""
    return {
        "code": unit.code,
        "level": str(unit.level),
        "name": unit.name,
        "kind": unit.kind,
        "special_type": unit.special_type,
        "households": unit.households,
        "population": unit.population,
    }
