"""Which groups of a coverage run have nothing to find between their children, for every group at once.

A group (a parent and its children) whose base children are a valid coverage whose union is the
parent vertex for vertex has no gap, no overlap and no overhang; if it has at most one overlay
child (a special grid), inside the parent, it has no geometric finding at all. At 400,000 grids
nearly every group is such a group, so this is decided before anything is projected: in storage
lon/lat, where neighbours share their vertices exactly (projecting and densifying each polygon
apart can move a shared vertex by a bit, and the coverage would no longer be noded alike), with
vectorised shapely calls over all groups of a given number of children at once
(`coverage_union_all(axis=1)`). Topology does not depend on the CRS: a parent tiled exactly in
lon/lat is tiled exactly in metres too. Every other group goes to the exact analysis of
geo.coverage, which is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely
from shapely.errors import GEOSException

# Children's areas (degrees²) may add up to their union's with this relative rounding at most.
AREA_RTOL = 1e-9


def groups_to_analyse(groups: Sequence[tuple[Any, Sequence[Any]]], overlay: np.ndarray) -> list[int]:
    """The indices of the (parent, children) groups (units with a storage `geometry`) that are not
    known to be exact, in order; `overlay` flags the children (all groups' in a row) that overlay."""
    parents = np.empty(len(groups), dtype=object)
    parents[:] = [p.geometry for p, _ in groups]
    children = np.empty(len(overlay), dtype=object)
    children[:] = [c.geometry for _, cs in groups for c in cs]
    group = np.repeat(np.arange(len(groups)), [len(cs) for _, cs in groups])
    return [int(g) for g in np.flatnonzero(~exact_groups(parents, children, group, overlay))]


def exact_groups(
    parents: np.ndarray, children: np.ndarray, group: np.ndarray, overlay: np.ndarray
) -> np.ndarray:
    """Per group: True when nothing can be found between its children and it (see the module).

    `parents`: (n,) storage geometries; `children`: (m,) storage geometries, `group[i]` the group
    of child i (groups in order); `overlay[i]` True for a child that overlays (a special grid).
    """
    n = len(parents)
    if n == 0:
        return np.zeros(0, dtype=bool)
    base = ~overlay & shapely.is_valid(children)
    # An invalid child cannot be judged here: its group goes to the exact analysis.
    invalid_groups = np.zeros(n, dtype=bool)
    invalid_groups[group[~overlay & ~base]] = True
    exact = _base_tiles_parent(parents, children[base], group[base]) & ~invalid_groups
    return exact & _overlays_inside(parents, children[overlay], group[overlay], exact)


def _base_tiles_parent(parents: np.ndarray, kids: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Per group: its base children's coverage union is the parent, and their areas add up."""
    n = len(parents)
    counts = np.bincount(group, minlength=n)
    union = np.empty(n, dtype=object)
    # Rank of each child in its group (children come grouped, groups in order).
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(group)) - starts[group]
    for k in np.unique(counts[counts > 0]):
        members = np.flatnonzero(counts == k)
        row = np.full(n, -1)
        row[members] = np.arange(len(members))
        matrix = np.empty((len(members), k), dtype=object)
        mine = counts[group] == k
        matrix[row[group[mine]], rank[mine]] = kids[mine]
        union[members] = _coverage_unions(matrix)
    done = counts > 0
    done[done] = ~shapely.is_missing(union[done])
    total = np.bincount(group, weights=shapely.area(kids), minlength=n)
    done[done] = np.abs(shapely.area(union[done]) - total[done]) <= AREA_RTOL * total[done]
    done[done] = shapely.equals_exact(_canonical(parents[done]), _canonical(union[done]), 0.0)
    return done


def _coverage_unions(matrix: np.ndarray) -> np.ndarray:
    """The coverage union of each row; None for a row GEOS refuses (badly noded: not a coverage)."""
    try:
        return shapely.coverage_union_all(matrix, axis=1)
    except GEOSException:
        out = np.empty(len(matrix), dtype=object)
        for i, row in enumerate(matrix):
            try:
                out[i] = shapely.coverage_union_all(row)
            except GEOSException:
                out[i] = None
        return out


def _canonical(geometries: np.ndarray) -> np.ndarray:
    """MultiPolygons in normal form: a Polygon and a one-part MultiPolygon compare equal."""
    parts, index = shapely.get_parts(geometries, return_index=True)
    multi = shapely.multipolygons(parts, indices=index)
    out = np.empty(len(geometries), dtype=object)
    out[np.unique(index)] = multi
    return shapely.normalize(out)


def _overlays_inside(
    parents: np.ndarray, overlays: np.ndarray, group: np.ndarray, judged: np.ndarray
) -> np.ndarray:
    """Per group: at most one overlay child, and it lies inside the parent (only `judged` groups)."""
    n = len(parents)
    counts = np.bincount(group, minlength=n)
    ok = counts <= 1
    single = judged[group] & (counts[group] == 1)
    if single.any():
        inside = shapely.covers(parents[group[single]], overlays[single])
        ok[group[single][~inside]] = False
    return ok
