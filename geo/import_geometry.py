"""The geometries of an import checked and converted as whole arrays (issue 19: the province import).

Per feature, `geo.importer` cleans a geometry (geo.validation.clean_geometry), converts it to
storage coordinates (crs.geometry_to_storage), checks every vertex (check_coordinates) and checks
validity again: a dozen shapely and PROJ calls a feature, two thirds of a 400,000-grid import.
Here the same steps run once over every geometry of the file. A geometry that passes them all
is stored as computed here; any other goes through the per-feature steps, which refuse or repair
it with their own messages (so the report is word for word what it was).
"""

from __future__ import annotations

import numpy as np
import shapely

from geo import crs

_POLYGONAL = (3, 6)  # shapely type ids of Polygon and MultiPolygon


def _multipolygons(geometries: np.ndarray) -> np.ndarray:
    """Each (multi)polygon as a MultiPolygon of its parts, in order (a Polygon becomes one part)."""
    parts, owner = shapely.get_parts(geometries, return_index=True)
    out = np.full(len(geometries), None, dtype=object)
    present = np.unique(owner)
    out[present] = shapely.multipolygons(parts, indices=np.searchsorted(present, owner))
    return out


def storage_geometries(geometries: np.ndarray, crs_name: str) -> np.ndarray:
    """Per geometry (given in `crs_name`): its storage MultiPolygon when it is valid, 2-D or made
    so, and every vertex is plausible before and after conversion; else None (check it alone)."""
    geometries = np.asarray(geometries, dtype=object)
    out = np.full(len(geometries), None, dtype=object)
    ok = ~shapely.is_missing(geometries)
    ok[ok] = ~shapely.is_empty(geometries[ok]) & np.isin(shapely.get_type_id(geometries[ok]), _POLYGONAL)
    at = np.flatnonzero(ok)
    candidates = geometries[at]
    has_z = shapely.has_z(candidates)
    candidates[has_z] = shapely.force_2d(candidates[has_z])
    valid = shapely.is_valid(candidates)
    at, candidates = at[valid], candidates[valid]
    if not len(at):
        return out
    try:
        stored = shapely.transform(
            _multipolygons(candidates),
            lambda xy: np.column_stack(crs.to_storage(xy[:, 0], xy[:, 1], crs_name)),
        )
    except crs.CoordinateError:  # the per-feature steps say which feature and why
        return out
    xy, owner = shapely.get_coordinates(stored, return_index=True)
    minx, miny, maxx, maxy = crs.CHINA_BOUNDS
    x, y = xy[:, 0], xy[:, 1]
    bad = ~(np.isfinite(x) & np.isfinite(y)) | (x < minx) | (x > maxx) | (y < miny) | (y > maxy)
    plausible = np.bincount(owner[bad], minlength=len(stored)) == 0
    keep = np.zeros(len(stored), dtype=bool)
    keep[plausible] = shapely.is_valid(stored[plausible])  # a projection can fold a polygon
    out[at[keep]] = stored[keep]
    return out
