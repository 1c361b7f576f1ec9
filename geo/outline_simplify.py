"""Simplify unit outlines as coverages, so neighbours still share every edge after simplification.

`shapely.coverage_simplify` (GEOS CoverageSimplifier) simplifies each edge shared by two polygons
once, for both: the simplified units still meet exactly, with no gap or overlap, at any tolerance,
and no unit is dropped. Simplifying every polygon on its own (ST_Simplify, ST_AsMVTGeom's snapping
alone at low zoom) moves each side of a shared edge differently and opens slivers.

Groups (a coverage is simplified as one call):
- the province, cities and counties: each level as a whole (a few hundred polygons at most);
- streets, communities and base grids: per level and county, keeping the county's outline as it
  is (`simplify_boundary=False`), so units of two neighbouring counties, simplified in different
  calls (or at different times, after a publish in one of them), still meet along it;
- special grids overlay base grids (they are not part of the coverage): simplified one by one.
A group that is not a valid coverage (data with overlaps or gaps between neighbours) is simplified
polygon by polygon, topology-preserving: nothing is refused for the sake of a map.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import shapely

from geo.codes import CODE_LENGTH, TOP_LEVELS, GridKind, Level


def group_key(code: str, level: Level, kind: str | None) -> tuple[str, str] | None:
    """Which coverage a unit is simplified with: (level, county) or (level, ""); None alone.

    >>> group_key("411681", Level.COUNTY, None), group_key("411681001", Level.STREET, None)
    (('county', ''), ('street', '411681'))
    >>> group_key("411681001001901", Level.GRID, "special") is None
    True
    """
    if kind == GridKind.SPECIAL:
        return None
    if level in TOP_LEVELS:
        return (str(level), "")
    return (str(level), code[: CODE_LENGTH[Level.COUNTY]])


def simplify_units(
    codes: Sequence[str], levels: Sequence[Level], kinds: Sequence[str | None], geoms: np.ndarray,
    tolerance: float,
) -> np.ndarray:
    """The outlines simplified by `tolerance` (their CRS units), coverage by coverage; same order."""
    groups: dict[tuple[str, str] | None, list[int]] = defaultdict(list)
    for i, (code, level, kind) in enumerate(zip(codes, levels, kinds, strict=True)):
        groups[group_key(code, level, kind)].append(i)
    out = np.empty(len(geoms), dtype=object)
    for key, members in groups.items():
        index = np.asarray(members)
        if key is None:
            out[index] = shapely.simplify(geoms[index], tolerance, preserve_topology=True)
        else:
            whole_level = key[1] == ""
            out[index] = simplify_coverage(geoms[index], tolerance, keep_outline=not whole_level)
    return out


def simplify_coverage(geoms: np.ndarray, tolerance: float, *, keep_outline: bool) -> np.ndarray:
    """One coverage simplified with shared edges kept shared (topology-preserving one by one if the
    polygons are not a valid coverage)."""
    if len(geoms) == 1 and keep_outline:
        return geoms  # its whole outline is the group's outline
    if not shapely.coverage_is_valid(geoms):
        return shapely.simplify(geoms, tolerance, preserve_topology=True)
    return shapely.coverage_simplify(geoms, tolerance, simplify_boundary=not keep_outline)
