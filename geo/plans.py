"""Draft plans (redrawing): edits to a set of unit geometries, code allocation, checks and changes.

Pure functions over shapely geometries in storage lon/lat (EPSG:4490); areas and widths are
measured in the Gauss-Krüger zone of the place (geo.crs). store.plans loads the units below a
plan's unit, replays the plan's edits here in order, and stores what a publish decides.

Edits: replace a unit's geometry (and/or attributes), split a grid along a line, merge units,
move a micro-grid to another grid, create a unit (carving it out of its base siblings), retire a
unit (optionally into a neighbour). Codes of new units are allocated under their parent in reading
order (rows north→south, west→east within a row, domain.md §1), lowest free number first,
skipping every code ever used: a retired code is never given out again.

Households and population of a unit whose area changed are estimated by area share from the units
it took area from, unless an edit gave them; `PlanState.estimated` names those units.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np
import shapely
import shapely.errors
import shapely.ops
from shapely.geometry import mapping

from geo import coverage, crs
from geo.codes import CODE_LENGTH, GridKind, Level, level_of, parent_code
from geo.validation import UnitFeature

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


class EditError(ValueError):
    """An edit that cannot be applied to the draft; the message says why."""


class CodeTaken(EditError):
    """A code this draft allocated has been used since (by another plan or an import)."""

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(f"code {code}, allocated by this draft, has been used since")


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


# ---------------------------------------------------------------- edits


def apply_edit(state: PlanState, edit: Edit) -> tuple[PlanState, list[str]]:
    """The state after `edit`, and the codes it allocated (stored with the edit for replays)."""
    state = state.copy()
    handler = {
        Operation.REPLACE: _replace,
        Operation.SPLIT: _split,
        Operation.MERGE: _merge,
        Operation.MOVE: _move,
        Operation.CREATE: _create,
        Operation.RETIRE: _retire,
        Operation.RESHAPE: _reshape,
    }[Operation(edit.operation)]
    allocation = _Allocation(edit.params.get("allocated"))
    handler(state, dict(edit.params), edit.geometry, allocation)
    return state, allocation.codes


def replay(base: PlanState, edits: Iterable[Edit]) -> PlanState:
    """Apply edits in order (each with the codes it allocated when it was made)."""
    state = base
    for number, edit in enumerate(edits, 1):
        try:
            state, _ = apply_edit(state, edit)
        except CodeTaken:
            raise
        except EditError as exc:
            raise EditError(f"edit {number} ({edit.operation}): {exc}") from None
    return state


def _attributes(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: params[k] for k in ATTRIBUTES if k in params}


def _set(state: PlanState, unit: UnitFeature, **changes: Any) -> UnitFeature:
    if any(k in changes for k in COUNTS):
        state.explicit.add(unit.code)
    updated = replace(unit, **changes)
    state.units[unit.code] = updated
    return updated


def _replace(state: PlanState, params: dict, geometry: shapely.Geometry | None, alloc: _Allocation) -> None:
    unit = state.unit(_code(params))
    changes = _attributes(params)
    if geometry is not None:
        # Anything but a Polygon is kept as given: validation says what is wrong with it.
        changes["geometry"] = as_multipolygon(geometry) if geometry.geom_type == "Polygon" else geometry
    if not changes:
        raise EditError("replace needs a geometry or attributes to change")
    _set(state, unit, **changes)
    state.notes.append(f"replaced {unit.code}" + (" (geometry)" if geometry is not None else ""))


def _split(state: PlanState, params: dict, line: shapely.Geometry | None, alloc: _Allocation) -> None:
    unit = state.unit(_code(params))
    if line is None or line.geom_type not in ("LineString", "MultiLineString"):
        raise EditError("split needs a LineString (or MultiLineString) geometry to cut along")
    if not shapely.is_valid(unit.geometry):
        raise EditError(f"{unit.code} has an invalid geometry; replace it before splitting")
    pieces, untouched = [], []
    for part in shapely.get_parts(unit.geometry):
        cut = [p for p in shapely.get_parts(shapely.ops.split(part, line)) if p.geom_type == "Polygon"]
        (pieces if len(cut) > 1 else untouched).extend(cut)
    if len(pieces) < 2:
        raise EditError(f"the line does not cut {unit.code} into pieces; draw it across the whole unit")
    # The largest piece keeps the code (most of the people, cases and staff stay where they were).
    pieces.sort(key=lambda p: -p.area)
    kept = _clean(shapely.union_all([pieces[0], *untouched]))
    new_geoms = [as_multipolygon(p) for p in pieces[1:]]
    codes = alloc.take(state, parent_code(unit.code), new_geoms)
    _set(state, unit, geometry=kept, **({"name": params["name"]} if params.get("name") else {}))
    names = list(params.get("names") or [])
    for i, (code, geom) in enumerate(zip(codes, new_geoms, strict=True)):
        name = names[i] if i < len(names) else f"{unit.name}（{code[-3:]}）"
        state.units[code] = UnitFeature(
            code, name, unit.level, geom, unit.kind, unit.special_type, None, None, dict(unit.attributes)
        )
    _rehome_children(state, unit.code, [unit.code, *codes], alloc)
    state.notes.append(f"split {unit.code} into {unit.code} and {', '.join(codes)}")


def _merge(state: PlanState, params: dict, geometry: shapely.Geometry | None, alloc: _Allocation) -> None:
    codes = sorted(set(params.get("codes") or []))
    if len(codes) < 2:
        raise EditError("merge needs `codes`: two or more units")
    units = [state.unit(c) for c in codes]
    into = params.get("into") or codes[0]
    if into not in codes:
        raise EditError(f"`into` {into} is not one of the merged units {', '.join(codes)}")
    if len({parent_code(c) for c in codes}) > 1:
        raise EditError("only siblings (units with the same parent) can merge")
    if len({u.kind == GridKind.SPECIAL for u in units}) > 1:
        raise EditError("a special grid cannot merge with a base grid")
    _absorb(state, state.units[into], [u for u in units if u.code != into], params, alloc)


def _absorb(
    state: PlanState, target: UnitFeature, others: list[UnitFeature], params: dict, alloc: _Allocation
) -> None:
    """`target` takes the area of `others`, which retire; their children move under `target`."""
    union = _clean(shapely.union_all([target.geometry, *(o.geometry for o in others)]))
    _set(state, target, geometry=union, **_attributes(params))
    if not any(k in params for k in COUNTS) and all(_has_counts(u) for u in [target, *others]):
        # Whole units joined: their counts add up exactly, no estimate needed.
        totals = {k: sum(getattr(u, k) for u in [target, *others]) for k in COUNTS}
        _set(state, state.units[target.code], **totals)
    for other in others:
        _move_children(state, state.children(other.code), target.code, alloc)
        _retire_code(state, other.code, successor=target.code)
    state.notes.append(f"merged {', '.join(o.code for o in others)} into {target.code}")


def _has_counts(unit: UnitFeature) -> bool:
    return unit.households is not None and unit.population is not None


def _move(state: PlanState, params: dict, geometry: shapely.Geometry | None, alloc: _Allocation) -> None:
    micro = state.unit(_code(params))
    target = state.unit(params.get("to") or "")
    if level_of(micro.code) != Level.MICRO_GRID or level_of(target.code) != Level.GRID:
        raise EditError("move takes a micro-grid (`code`) to another grid (`to`)")
    source = state.unit(parent_code(micro.code))
    if source.code == target.code:
        raise EditError(f"micro-grid {micro.code} already belongs to {target.code}")
    remaining = _clean(shapely.difference(source.geometry, micro.geometry))
    if remaining.is_empty:
        raise EditError(f"moving {micro.code} would leave {source.code} empty; merge the grids instead")
    _set(state, source, geometry=remaining)
    _set(state, target, geometry=_clean(shapely.union(target.geometry, micro.geometry)))
    codes = _move_children(state, [micro], target.code, alloc)
    state.notes.append(f"moved micro-grid {micro.code} from {source.code} to {target.code} as {codes[0]}")


def _move_children(
    state: PlanState, children: list[UnitFeature], parent: str, alloc: _Allocation
) -> list[str]:
    """Children get new codes under `parent` (a code carries its parent); the old codes retire."""
    if not children:
        return []
    codes = alloc.take(state, parent, [c.geometry for c in children])
    for child, code in zip(children, codes, strict=True):
        state.units[code] = replace(child, code=code)
        if child.code in state.explicit:
            state.explicit.add(code)
        _retire_code(state, child.code, successor=code)
    return codes


def _rehome_children(state: PlanState, old_parent: str, parents: list[str], alloc: _Allocation) -> None:
    """After a split, each child goes with the piece holding most of its area."""
    for child in state.children(old_parent):
        shares = [shapely.intersection(child.geometry, state.units[p].geometry).area for p in parents]
        best = parents[int(np.argmax(shares))]
        if best != old_parent:
            _move_children(state, [child], best, alloc)


def _create(state: PlanState, params: dict, geometry: shapely.Geometry | None, alloc: _Allocation) -> None:
    if geometry is None or geometry.geom_type not in ("Polygon", "MultiPolygon"):
        raise EditError("create needs a Polygon or MultiPolygon geometry")
    parent = params.get("parent") or state.root
    if parent != state.root:
        state.unit(parent)
    if len(parent) >= CODE_LENGTH[Level.MICRO_GRID]:
        raise EditError(f"nothing can be created below a micro-grid ({parent})")
    if not params.get("name"):
        raise EditError("create needs a `name`")
    if level_of(parent) not in CHILD_LEVEL:  # cities and counties are imported GB/T 2260 regions
        raise EditError(f"a plan creates streets and below, not units under the {level_of(parent)} {parent}")
    level = CHILD_LEVEL[level_of(parent)]
    kind = params.get("kind")
    if level == Level.MICRO_GRID and kind is None and parent in state.units:
        kind = state.units[parent].kind
    if level in (Level.GRID, Level.MICRO_GRID) and kind is None:
        raise EditError(f"a new {level} needs a `kind` ({', '.join(GridKind)})")
    geometry = as_multipolygon(geometry)
    if params.get("carve", kind != GridKind.SPECIAL) and shapely.is_valid(geometry):
        _carve(state, parent, geometry)
    code = alloc.take(state, parent, [geometry])[0]
    state.units[code] = UnitFeature(
        code,
        params["name"],
        level,
        geometry,
        kind,
        params.get("special_type"),
        params.get("households"),
        params.get("population"),
        dict(params.get("attributes") or {}),
    )
    if any(k in params for k in COUNTS):
        state.explicit.add(code)
    state.notes.append(f"created {code} {params['name']}")


def _carve(state: PlanState, parent: str, geometry: shapely.Geometry) -> None:
    """Cut a new base unit's area out of its base siblings, so that it overlaps none of them."""
    for sibling in state.children(parent):
        if sibling.kind not in BASE_KINDS or not shapely.intersects(sibling.geometry, geometry):
            continue
        rest = _clean(shapely.difference(sibling.geometry, geometry))
        if rest.is_empty:
            raise EditError(f"the new unit covers all of {sibling.code}; retire or merge it instead")
        if not _same_geometry(rest, sibling.geometry):
            _set(state, sibling, geometry=rest)


def _retire(state: PlanState, params: dict, geometry: shapely.Geometry | None, alloc: _Allocation) -> None:
    unit = state.unit(_code(params))
    into = params.get("into")
    if into:
        target = state.unit(into)
        if parent_code(into) != parent_code(unit.code):
            raise EditError(f"{unit.code} can only retire into a sibling, not {into}")
        _absorb(state, target, [unit], params, alloc)
        return
    for child in state.children(unit.code):
        _retire_code(state, child.code, successor=None)
    _retire_code(state, unit.code, successor=None)
    state.notes.append(f"retired {unit.code}")


def _reshape(state: PlanState, params: dict, geometry: shapely.Geometry | None, alloc: _Allocation) -> None:
    from geo.reshape import reshape  # its own module, which builds on this one

    reshape(state, params, geometry)


def _retire_code(state: PlanState, code: str, successor: str | None) -> None:
    state.units.pop(code, None)
    state.retired.add(code)
    state.explicit.discard(code)
    if successor:
        state.successors[code] = successor


def _code(params: Mapping[str, Any]) -> str:
    code = params.get("code")
    if not code:
        raise EditError("the edit needs `code`: the unit it changes")
    return str(code)


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


def metric_crs_of(units: Iterable[UnitFeature]) -> str:
    """The Gauss-Krüger zone for a set of units."""
    return crs.metric_crs_of(u.geometry for u in units)


def to_storage(geometry: shapely.Geometry, metric_crs: str) -> shapely.Geometry:
    """A metric geometry back in storage lon/lat."""
    t = crs.transformer(metric_crs, crs.STORAGE_CRS)
    return shapely.transform(geometry, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def usable(unit: UnitFeature) -> bool:
    """True when a unit's geometry is a valid, non-empty area (overlay operations need one)."""
    g = unit.geometry
    return g is not None and g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty and g.is_valid


def _layer(unit: UnitFeature) -> tuple[int, bool]:
    """Units share households only with units of the same level and layer (base or special)."""
    return len(unit.code), unit.kind == GridKind.SPECIAL


def area_m2(geometry: shapely.Geometry, metric_crs: str) -> float:
    """Area in m² of a storage geometry.

    Overlays run in storage lon/lat, where units share their edges exactly; projecting first
    bends each edge between its own vertices and leaves slivers of a square metre along them.
    """
    return 0.0 if geometry.is_empty else float(crs.to_metric(geometry, metric_crs).area)


def estimate_counts(base: Mapping[str, UnitFeature], state: PlanState) -> PlanState:
    """Households and population of units whose area changed, by area share (unless an edit gave them)."""
    state = state.copy()
    metric = metric_crs_of(base.values())
    moved = [c for c in changes(base, state) if c.after is not None and c.geometry_changed]
    for change in (c for c in moved if usable(c.after)):
        unit = change.after
        if unit.code in state.explicit:
            continue
        sources = [b for b in base.values() if _layer(b) == _layer(unit)]
        sources = [b for b in sources if shapely.intersects(b.geometry, unit.geometry)]
        if not sources or any(not _has_counts(b) for b in sources):
            continue  # nothing to estimate from: keep what the unit said
        totals = dict.fromkeys(COUNTS, 0.0)
        for source in sources:
            whole = area_m2(source.geometry, metric)
            share = (
                area_m2(shapely.intersection(source.geometry, unit.geometry), metric) / whole if whole else 0
            )
            for k in COUNTS:
                totals[k] += getattr(source, k) * share
        estimated = {k: round(v) for k, v in totals.items()}
        if any(getattr(unit, k) != estimated[k] for k in COUNTS):
            state.units[unit.code] = replace(unit, **estimated)
            state.estimated.add(unit.code)
    return state


@dataclass(frozen=True)
class Transfer:
    """Area that changes hands between two units (None: to or from nobody, a gap)."""

    from_code: str | None
    to_code: str | None
    geometry: shapely.Geometry  # storage lon/lat
    area_m2: float
    households: float  # area-weighted share of the giver's households
    population: float


def transfers(
    base: Mapping[str, UnitFeature], state: PlanState, *, min_area_m2: float = 1.0
) -> list[Transfer]:
    """Every area that leaves one unit for another (same level and layer), with its people by area."""
    metric = metric_crs_of(base.values())
    changed = changes(base, state)
    givers = [c.before for c in changed if c.before is not None and c.geometry_changed]
    takers = [c.after for c in changed if c.after is not None and c.geometry_changed and usable(c.after)]
    out = []
    for giver in givers:
        after = state.units.get(giver.code)
        keeps = after is not None and usable(after)
        lost = _clean(shapely.difference(giver.geometry, after.geometry)) if keeps else giver.geometry
        if area_m2(lost, metric) < min_area_m2:
            continue
        whole = area_m2(giver.geometry, metric)
        claimed = []
        for taker in (t for t in takers if t.code != giver.code and _layer(t) == _layer(giver)):
            piece = _clean(shapely.intersection(lost, taker.geometry))
            if area_m2(piece, metric) >= min_area_m2:
                out.append(_transfer(giver, taker.code, piece, whole, metric))
                claimed.append(piece)
        rest = _clean(shapely.difference(lost, shapely.union_all(claimed))) if claimed else lost
        if area_m2(rest, metric) >= min_area_m2:
            out.append(_transfer(giver, None, rest, whole, metric))
    for taker in takers:
        held = [b.geometry for b in base.values() if _layer(b) == _layer(taker)]
        fresh = (
            _clean(shapely.difference(taker.geometry, shapely.union_all(held))) if held else taker.geometry
        )
        if area_m2(fresh, metric) >= min_area_m2:
            out.append(Transfer(None, taker.code, fresh, area_m2(fresh, metric), 0.0, 0.0))
    return out


def _transfer(
    giver: UnitFeature, to: str | None, piece: shapely.Geometry, whole: float, metric: str
) -> Transfer:
    area = area_m2(piece, metric)
    share = area / whole if whole else 0.0
    return Transfer(
        giver.code, to, piece, area, (giver.households or 0) * share, (giver.population or 0) * share
    )


# ---------------------------------------------------------------- validation


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


# ---------------------------------------------------------------- presentation


def geojson_geometry(geometry: shapely.Geometry | None) -> dict | None:
    """A GeoJSON geometry in storage lon/lat, rounded like store.units (about 1 cm)."""
    if geometry is None or geometry.is_empty:
        return None
    return mapping(crs.geojson_rounded(geometry))


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
