"""Polygons as flat numpy arrays with a bucket index: which polygons cover a point.

This is the form of the grids that /locate's copy keeps (store.locate_cache): plain arrays only,
so that one process can write them to a file and every server process can map that file
read-only (the page cache then holds one copy for the whole machine, store.locate_file).

Arrays of a layer (`arrays(geometries)`; names as in `ARRAYS`):
  coords        float64 (m, 2)  every ring's vertices, as stored (no precision lost)
  rings         int64           ring i is coords[rings[i]:rings[i + 1]]
  parts         int64           polygon j has rings parts[j]:parts[j + 1]
  geoms         int64           item k (a MultiPolygon) has polygons geoms[k]:geoms[k + 1]
  bounds        float64 (n, 4)  each item's box
  cells         float64 (6,)    the bucket grid: x0, y0, dx, dy, ncols, nrows (geo.grid_raster.Cells)
  bucket_start  int64           cell c lists items bucket_items[bucket_start[c]:bucket_start[c + 1]]
  bucket_items  int32           the items whose box meets the cell
(the first four are shapely.to_ragged_array's MultiPolygon layout).

Why a bucket grid written here: shapely's STRtree cannot be written out or shared between
processes; the packed R-trees on PyPI that could (flatbush 1.1.0 of 2020, pyflatbush 0.1.0 of
2022) are single unmaintained releases, and Rtree (libspatialindex) keeps its pages in each
process's own buffers. Grids are of about one size and tile their area, so a regular grid of
cells about a grid wide lists a handful of candidates per cell: one division and two slices
find them, with no tree to walk.

The exact test is GEOS's `intersects` on the candidate polygon rebuilt from its slices (boundary
points count), the predicate the STRtree copy used, so the answers stay the same.
"""

from __future__ import annotations

import math

import numpy as np
import shapely

from geo.grid_raster import Cells, expand_runs

ARRAYS = ("coords", "rings", "parts", "geoms", "bounds", "cells", "bucket_start", "bucket_items")
_CELLS_PER_ITEM = 4  # the bucket grid has at most this many cells per polygon (plus _MIN_CELLS)
_MIN_CELLS = 1024


def arrays(geometries: np.ndarray) -> dict[str, np.ndarray]:
    """The flat arrays of (multi)polygons in storage lon/lat; None or empty: an item covering nothing."""
    return combined([ragged(geometries)])


def ragged(geometries: np.ndarray) -> dict[str, np.ndarray]:
    """The polygons' part of the arrays (no index yet): coords, rings, parts, geoms and bounds.

    Made chunk by chunk and `combined`, a large layer never has all its shapely objects at once.
    """
    geometries = np.asarray(geometries, dtype=object)
    empty = shapely.is_missing(geometries) | shapely.is_empty(geometries)
    # One layout for all: a Polygon becomes a MultiPolygon of one, a missing item an empty one.
    kind = shapely.get_type_id(geometries)
    every = np.full(len(geometries), shapely.MultiPolygon(), dtype=object)
    single = np.flatnonzero(~empty & (kind == shapely.GeometryType.POLYGON))
    every[single] = shapely.multipolygons(geometries[single], indices=np.arange(len(single)))
    multi = np.flatnonzero(~empty & (kind == shapely.GeometryType.MULTIPOLYGON))
    every[multi] = geometries[multi]
    if len(every):
        _, coords, (rings, parts, geoms) = shapely.to_ragged_array(every)
    else:
        coords, rings, parts, geoms = np.empty((0, 2)), *(np.zeros(1, dtype=np.int64),) * 3
    return {
        "coords": np.ascontiguousarray(coords, dtype=np.float64),
        "rings": rings.astype(np.int64),
        "parts": parts.astype(np.int64),
        "geoms": geoms.astype(np.int64),
        "bounds": np.ascontiguousarray(shapely.bounds(every).reshape(-1, 4), dtype=np.float64),
    }


def combined(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays of consecutive chunks' `ragged` arrays, with the bucket index over all of them."""
    out: dict[str, np.ndarray] = {"coords": np.concatenate([c["coords"] for c in chunks])}
    # Each offset array indexes the next level down: shift a chunk's by what came before it.
    for name, below in (("rings", "coords"), ("parts", "rings"), ("geoms", "parts")):
        shift = np.cumsum([0] + [len(c[below]) - (below != "coords") for c in chunks])
        offsets = [c[name][:-1] + shift[i] for i, c in enumerate(chunks)]
        out[name] = np.concatenate([*offsets, [shift[-1]]]).astype(np.int64)
    out["bounds"] = np.concatenate([c["bounds"] for c in chunks]).reshape(-1, 4)
    cells, start, items = _buckets(out["bounds"], ~np.isnan(out["bounds"][:, 0]))
    out["cells"] = np.array([cells.x0, cells.y0, cells.dx, cells.dy, cells.ncols, cells.nrows])
    out["bucket_start"], out["bucket_items"] = start, items
    return out


def _buckets(bounds: np.ndarray, present: np.ndarray) -> tuple[Cells, np.ndarray, np.ndarray]:
    """A regular grid of cells over the boxes, and per cell the items whose box meets it (CSR)."""
    which = np.flatnonzero(present)
    if not len(which):
        return Cells(0.0, 0.0, 1.0, 1.0, 0, 0), np.zeros(1, dtype=np.int64), np.empty(0, dtype=np.int32)
    b = bounds[which]
    extent = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
    span = max(extent[2] - extent[0], extent[3] - extent[1], 1e-9)
    dx = float(np.median(b[:, 2] - b[:, 0])) or span / 32
    dy = float(np.median(b[:, 3] - b[:, 1])) or span / 32
    count = ((extent[2] - extent[0]) / dx + 2) * ((extent[3] - extent[1]) / dy + 2)
    most = _CELLS_PER_ITEM * len(which) + _MIN_CELLS
    if count > most:  # a sparse area (counties far apart): coarser cells, same aspect
        dx, dy = dx * math.sqrt(count / most), dy * math.sqrt(count / most)
    cells = Cells.around(extent, dx, dy)
    c0, c1, r0, r1 = cells.box_spans(b)
    box, row = expand_runs(r0, r1 - r0 + 1)  # each row of a box is a run of cells
    run, cell = expand_runs(row * cells.ncols + c0[box], (c1 - c0 + 1)[box])
    order = np.argsort(cell, kind="stable")
    start = np.searchsorted(cell[order], np.arange(cells.size + 1)).astype(np.int64)
    return cells, start, which[box[run][order]].astype(np.int32)


class FlatPolygons:
    """Which items of a layer cover a point, from its arrays (in memory or mapped from a file)."""

    def __init__(self, layer: dict[str, np.ndarray]) -> None:
        """Keep the arrays (not copied: a mapped file stays shared)."""
        self.coords, self.rings, self.parts, self.geoms = (
            layer[k] for k in ("coords", "rings", "parts", "geoms")
        )
        self.bounds, self.start, self.items = layer["bounds"], layer["bucket_start"], layer["bucket_items"]
        x0, y0, dx, dy, ncols, nrows = (float(v) for v in layer["cells"])
        self._cells = (x0, y0, dx, dy, int(ncols), int(nrows))

    def __len__(self) -> int:
        """Number of items."""
        return len(self.bounds)

    def covering(self, x: float, y: float) -> list[int]:
        """The items covering (x, y), boundary included, in index order."""
        x0, y0, dx, dy, ncols, nrows = self._cells
        # Cells.uv's formula: monotone in x and y, so a point in a box falls in a cell the box meets.
        u, v = (x - x0) / dx, (y0 - y) / dy
        if not (0 <= u < ncols and 0 <= v < nrows):  # also False for NaN
            return []
        cell = int(v) * ncols + int(u)
        candidates = self.items[self.start[cell] : self.start[cell + 1]]
        box = self.bounds[candidates]
        inside = (box[:, 0] <= x) & (x <= box[:, 2]) & (box[:, 1] <= y) & (y <= box[:, 3])
        return sorted(
            int(i) for i in candidates[inside] if shapely.intersects_xy(self.geometry(int(i)), x, y)
        )

    def geometry(self, i: int) -> shapely.MultiPolygon:
        """Item i as a shapely MultiPolygon (rebuilt from its slices of the arrays)."""
        g0, g1 = int(self.geoms[i]), int(self.geoms[i + 1])
        parts = self.parts[g0 : g1 + 1]
        rings = self.rings[parts[0] : parts[-1] + 1]
        coords = np.asarray(self.coords[rings[0] : rings[-1]])
        offsets = (rings - rings[0], parts - parts[0], np.array([0, g1 - g0]))
        return shapely.from_ragged_array(shapely.GeometryType.MULTIPOLYGON, coords, offsets)[0]
