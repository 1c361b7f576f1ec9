"""Reshape the boundary two neighbouring units share: both change together, so no gap or overlap.

The planner draws a new course between two points of the shared boundary. The new dividing line
is the old shared boundary up to the first point, the drawn course, and the old boundary on from
the second point; it cuts the two units' union in pieces, and each piece goes to the unit that
held most of it. The union is exactly what the two covered before: nothing else moves.
"""

from __future__ import annotations

from typing import Any

import shapely
import shapely.ops

from geo import crs
from geo.codes import parent_code
from geo.plan_edits import _set
from geo.plans import EditError, PlanState, _clean

SNAP_M = 5.0  # how far from the shared boundary a drawn end may be (the editor snaps it onto it)


def shared_boundary(a: shapely.Geometry, b: shapely.Geometry) -> shapely.LineString:
    """The one stretch of boundary two units share, as a line (EditError when none, or several)."""
    common = shapely.intersection(shapely.boundary(a), shapely.boundary(b))
    lines = [g for g in shapely.get_parts(common) if g.geom_type in ("LineString", "MultiLineString")]
    merged = shapely.line_merge(shapely.union_all(lines)) if lines else None
    if merged is None or merged.is_empty:
        raise EditError("the two units share no boundary line: only neighbours can be reshaped")
    if merged.geom_type != "LineString":
        raise EditError("the two units share more than one stretch of boundary; merge or redraw them instead")
    return merged


def reshape(state: PlanState, params: dict[str, Any], course: shapely.Geometry | None) -> None:
    """Move the boundary between `codes` (two siblings) onto the drawn course."""
    codes = list(dict.fromkeys(params.get("codes") or []))
    if len(codes) != 2:
        raise EditError("reshape needs `codes`: the two neighbouring units")
    a, b = state.unit(codes[0]), state.unit(codes[1])
    if parent_code(a.code) != parent_code(b.code):
        raise EditError("only siblings (units with the same parent) share a boundary to reshape")
    if course is None or course.geom_type != "LineString":
        raise EditError("reshape needs a LineString geometry: the new course of the boundary")
    shared = shared_boundary(a.geometry, b.geometry)
    divider = _divider(shared, course)
    union = _clean(shapely.union(a.geometry, b.geometry))
    pieces = [p for p in shapely.get_parts(shapely.ops.split(union, divider)) if p.geom_type == "Polygon"]
    owners: dict[str, list[shapely.Geometry]] = {a.code: [], b.code: []}
    for piece in pieces:
        held_by_a = shapely.intersection(piece, a.geometry).area
        owners[a.code if held_by_a >= piece.area / 2 else b.code].append(piece)
    if not owners[a.code] or not owners[b.code]:
        raise EditError("the new course would give all of one unit to the other; merge them instead")
    covered = shapely.union_all(pieces)
    if abs(covered.area - union.area) > union.area * 1e-9:
        raise EditError("the new course leaves the two units: draw it inside them")
    _set(state, a, geometry=_clean(shapely.union_all(owners[a.code])))
    _set(state, b, geometry=_clean(shapely.union_all(owners[b.code])))
    state.notes.append(f"reshaped the boundary between {a.code} and {b.code}")


def _divider(shared: shapely.LineString, course: shapely.LineString) -> shapely.LineString:
    """The old shared boundary with the stretch between the course's ends replaced by the course."""
    start, end = shapely.Point(course.coords[0]), shapely.Point(course.coords[-1])
    metric = crs.metric_crs_of(shared)
    line_m = crs.to_metric(shared, metric)
    for point in (start, end):
        if crs.to_metric(point, metric).distance(line_m) > SNAP_M:
            raise EditError(f"the course must start and end on the shared boundary (within {SNAP_M:g} m)")
    at_start, at_end = shared.project(start), shared.project(end)
    coords = list(course.coords)
    if at_start > at_end:
        at_start, at_end, coords = at_end, at_start, coords[::-1]
    if at_end - at_start <= 0:
        raise EditError("the course must end at another point of the shared boundary")
    before = shapely.ops.substring(shared, 0, at_start)
    after = shapely.ops.substring(shared, at_end, shared.length)
    # The course's ends go exactly onto the boundary, so the divider is one connected line.
    middle = [shared.interpolate(at_start).coords[0], *coords[1:-1], shared.interpolate(at_end).coords[0]]
    head = list(before.coords)[:-1] if before.length > 0 else []
    tail = list(after.coords)[1:] if after.length > 0 else []
    return shapely.LineString(head + middle + tail)
