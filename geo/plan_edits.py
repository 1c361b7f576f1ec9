"""The edits of a draft plan: replace, split, merge, move, create, retire, reshape.

Each edit takes a PlanState (geo.plans) and returns a new one; a replay applies a plan's edits in
order with the codes each allocated when it was made. Households and population of a unit whose
area changed are estimated afterwards (geo.plan_impact), unless an edit gave them:
`PlanState.explicit` names those units.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import shapely
import shapely.ops

from geo.codes import CODE_LENGTH, GridKind, Level, level_of, parent_code
from geo.plans import (
    ATTRIBUTES,
    BASE_KINDS,
    CHILD_LEVEL,
    COUNTS,
    CodeTaken,
    Edit,
    EditError,
    Operation,
    PlanState,
    _Allocation,
    _clean,
    _same_geometry,
    as_multipolygon,
)
from geo.validation import UnitFeature

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
    if not any(k in params for k in COUNTS) and all(has_counts(u) for u in [target, *others]):
        # Whole units joined: their counts add up exactly, no estimate needed.
        totals = {k: sum(getattr(u, k) for u in [target, *others]) for k in COUNTS}
        _set(state, state.units[target.code], **totals)
    for other in others:
        _move_children(state, state.children(other.code), target.code, alloc)
        _retire_code(state, other.code, successor=target.code)
    state.notes.append(f"merged {', '.join(o.code for o in others)} into {target.code}")


def has_counts(unit: UnitFeature) -> bool:
    """True when a unit gives both its households and its population."""
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
