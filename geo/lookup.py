"""In-process point -> grid lookup for large batches, applying the rule of geo.assignment exactly.

Why a raster can give exact answers
-----------------------------------
A raster of cells (in storage lon/lat) is laid over the polygons' extent, and two things are
known for each cell:

* whether any polygon edge touches it. This is computed here, not by GDAL: every vertex and every
  crossing of an edge with a cell line marks the cells whose closed square, widened by `_EPS` of a
  cell, contains it. A segment touching a closed cell either ends in it or crosses its border, so
  no touched cell is missed; the widening is far larger than the rounding of the cell arithmetic.
* the winner at the cell centre: rasterio/GDAL burns the polygons worst precedence first, so the
  best covering polygon is burnt last.

A cell no edge touches lies wholly inside or wholly outside each polygon (it is connected and no
boundary crosses it), so every point in it is covered by exactly the polygons covering its centre,
and the centre's winner is the answer: one numpy gather. That centre is at least half a cell from
any edge, so GDAL's centre test cannot be a rounding coin toss. Points in edge cells (a minority,
given the cell size) are tested exactly by a shapely STRtree with `intersects`, so boundary points
count, and the precedence is resolved vectorised.

Micro-grids have their own raster, ordered by (parent grid's precedence, code). Its winner is the
answer when its parent is the chosen grid (then it has the lowest code among the parent's covering
micro-grids); otherwise, or in an edge cell, the exact query decides. Points no grid covers are
measured in the metric CRS against an STRtree of the projected grids (`query_nearest`, ties to
the lowest code) and snapped within the tolerance.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from rasterio.features import rasterize
from rasterio.transform import Affine

from geo.assignment import Status, grid_precedence
from geo.crs import STORAGE_CRS, metric_crs_for, transformer

STATUSES = (Status.ASSIGNED, Status.SNAPPED, Status.UNASSIGNED)  # BatchResult.status indexes this
ASSIGNED, SNAPPED, UNASSIGNED = 0, 1, 2
NONE = -1  # no grid / micro-grid
_EDGE = -2  # raster value of a cell an edge touches: its points are looked up exactly
_EPS = 1e-6  # widening of a cell (in cells) when marking edge cells; rounding is ~1e-12
_CELLS_PER_WIDTH = 24  # cell size = median polygon width / this, unless max_cells is reached
_SEGMENT_CHUNK = 250_000  # edge segments marked at once (bounds build memory)
_MAX_KEY = np.iinfo(np.int64).max


@dataclass(frozen=True)
class BatchResult:
    """Per-point answers of GridIndex.assign; indices refer to the index's codes/micro_codes."""

    status: np.ndarray  # uint8 index into STATUSES
    grid: np.ndarray  # int32 grid index, -1 if unassigned
    micro_grid: np.ndarray  # int32 micro-grid index, -1 if none
    distance_m: np.ndarray  # float64: 0 assigned, metres snapped, NaN unassigned
    nearest: np.ndarray  # int32 nearest grid of unassigned points, else -1
    nearest_m: np.ndarray  # float64 distance to it, NaN if none


def _min_per(owner: np.ndarray, key: np.ndarray, n: int) -> np.ndarray:
    """The smallest key of each of n owners among (owner, key) pairs; -1 where an owner has none."""
    best = np.full(n, _MAX_KEY, dtype=np.int64)
    np.minimum.at(best, owner, key)
    best[best == _MAX_KEY] = NONE
    return best


class _Layer:
    """Polygons with a precedence order: edge/winner raster for the gather, STRtree for the rest."""

    def __init__(self, geometries: np.ndarray, order: np.ndarray, max_cells: int) -> None:
        """Build the raster over the polygons' extent; `order` lists polygon indices best first."""
        self.order = order
        self.rank = np.empty(len(geometries), dtype=np.int64)
        self.rank[order] = np.arange(len(geometries))
        self.tree = shapely.STRtree(geometries)
        shapely.prepare(geometries)
        self.geometries = geometries
        present = ~(shapely.is_missing(geometries) | shapely.is_empty(geometries))
        self.nrows = self.ncols = 0
        self.edge_share = 0.0
        if not present.any():
            return
        bounds = shapely.bounds(geometries[present])
        minx, miny = bounds[:, 0].min(), bounds[:, 1].min()
        maxx, maxy = bounds[:, 2].max(), bounds[:, 3].max()
        span = max(maxx - minx, maxy - miny, 1e-9)
        dx = float(np.median(bounds[:, 2] - bounds[:, 0])) / _CELLS_PER_WIDTH or span / 1000
        dy = float(np.median(bounds[:, 3] - bounds[:, 1])) / _CELLS_PER_WIDTH or span / 1000
        cells = ((maxx - minx) / dx + 2) * ((maxy - miny) / dy + 2)
        if cells > max_cells:  # coarser cells, same aspect
            dx, dy = dx * math.sqrt(cells / max_cells), dy * math.sqrt(cells / max_cells)
        # One spare cell on every side: every point of every polygon falls strictly inside.
        self.dx, self.dy, self.x0, self.y0 = dx, dy, minx - dx, maxy + dy
        self.ncols = math.ceil((maxx - minx) / dx) + 2
        self.nrows = math.ceil((maxy - miny) / dy) + 2
        burn = [(geometries[i], int(i)) for i in order[::-1] if present[i]]  # winner burnt last
        raster = rasterize(
            burn,
            out_shape=(self.nrows, self.ncols),
            fill=NONE,
            dtype="int32",
            transform=Affine(dx, 0.0, self.x0, 0.0, -dy, self.y0),
        )
        self.raster = raster.ravel()
        self.raster[self._edge_cells(geometries[present])] = _EDGE
        self.edge_share = float(np.mean(self.raster == _EDGE))

    def _uv(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cell coordinates (column, row as floats) of lon/lat; the one formula everything uses."""
        return (x - self.x0) / self.dx, (self.y0 - y) / self.dy

    def _edge_cells(self, geometries: np.ndarray) -> np.ndarray:
        """Boolean mask of the cells any polygon edge touches (see the module docstring)."""
        mask = np.zeros(self.nrows * self.ncols, dtype=bool)
        lines = shapely.get_parts(shapely.boundary(geometries))
        xy, part = shapely.get_coordinates(lines, return_index=True)
        u, v = self._uv(xy[:, 0], xy[:, 1])
        self._mark(mask, u, v)  # vertices
        seg = np.flatnonzero(part[1:] == part[:-1])
        for s in range(0, len(seg), _SEGMENT_CHUNK):
            i = seg[s : s + _SEGMENT_CHUNK]
            ua, va, ub, vb = u[i], v[i], u[i + 1], v[i + 1]
            cu, cv = self._crossings(ua, va, ub, vb)  # with the column lines u = k
            self._mark(mask, cu, cv)
            cv, cu = self._crossings(va, ua, vb, ub)  # with the row lines v = k
            self._mark(mask, cu, cv)
        return mask

    @staticmethod
    def _crossings(
        a0: np.ndarray, b0: np.ndarray, a1: np.ndarray, b1: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Points (k, b) where segments (a0, b0)-(a1, b1) cross the lines a = k for integer k."""
        lo, hi = np.ceil(np.minimum(a0, a1)), np.floor(np.maximum(a0, a1))
        moving = a0 != a1  # a segment lying on a line a = k is covered by the other direction
        count = np.where(moving, hi - lo + 1, 0).astype(np.int64).clip(0)
        which = np.repeat(np.arange(len(a0)), count)
        k = lo[which] + (np.arange(len(which)) - np.repeat(np.cumsum(count) - count, count))
        t = (k - a0[which]) / (a1[which] - a0[which])
        return k, b0[which] + t * (b1[which] - b0[which])

    def _mark(self, mask: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        """Mark every cell whose closed square widened by _EPS contains a point (u, v)."""
        for du in (-_EPS, _EPS):
            for dv in (-_EPS, _EPS):
                col, row = np.floor(u + du), np.floor(v + dv)
                ok = (col >= 0) & (col < self.ncols) & (row >= 0) & (row < self.nrows)
                mask[row[ok].astype(np.int64) * self.ncols + col[ok].astype(np.int64)] = True

    def gather(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Raster answer per point: polygon index, NONE (no polygon covers it) or _EDGE."""
        out = np.full(len(x), NONE, dtype=np.int32)
        if not self.ncols:
            return out
        u, v = self._uv(x, y)
        inside = (u >= 0) & (u < self.ncols) & (v >= 0) & (v < self.nrows)  # False for NaN
        cell = v[inside].astype(np.int64) * self.ncols + u[inside].astype(np.int64)
        out[inside] = self.raster[cell]
        return out

    def covering(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact (point, polygon) pairs where the polygon intersects the point."""
        return self.tree.query(shapely.points(x, y), predicate="intersects")

    def best(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Exact winner per point (best precedence among covering polygons), NONE if uncovered."""
        point, poly = self.covering(x, y)
        rank = _min_per(point, self.rank[poly], len(x))
        return np.where(rank >= 0, self.order[rank.clip(0)], NONE).astype(np.int32)


class GridIndex:
    """Grids (and micro-grids) prepared for assigning millions of storage lon/lat points."""

    def __init__(
        self,
        codes: Sequence[str],
        kinds: Sequence[str | None],
        geometries: np.ndarray,
        *,
        micro_codes: Sequence[str] = (),
        micro_geometries: np.ndarray | Sequence = (),
        snap_tolerance_m: float = 30.0,
        metric_crs: str | None = None,
        max_cells: int = 16_000_000,
    ) -> None:
        """Index the grids; geometries are shapely (multi)polygons in storage lon/lat."""
        start = time.perf_counter()
        self.codes, self.kinds = list(codes), list(kinds)
        self.micro_codes = list(micro_codes)
        self.snap_tolerance_m = float(snap_tolerance_m)
        geometries = np.asarray(geometries, dtype=object)
        if not len(self.codes) == len(self.kinds) == len(geometries):
            raise ValueError("codes, kinds and geometries must have the same length")
        if len(self.micro_codes) != len(micro_geometries):
            raise ValueError("micro_codes and micro_geometries must have the same length")
        n = len(self.codes)
        order = np.array(
            sorted(range(n), key=lambda i: grid_precedence(self.kinds[i], self.codes[i])), dtype=np.int64
        )
        self._grids = _Layer(geometries, order, max_cells)
        self._by_code = np.argsort(np.array(self.codes, dtype=str), kind="stable")
        self._code_rank = np.argsort(self._by_code)  # position of each grid in code order

        # Micro-grids: precedence = (parent grid's precedence, code); a parent-less one comes last.
        self._micro: _Layer | None = None
        if self.micro_codes:
            by_code = {c: i for i, c in enumerate(self.codes)}
            self._micro_parent = np.array(
                [by_code.get(c[:-3], NONE) for c in self.micro_codes], dtype=np.int64
            )
            parent_rank = np.where(self._micro_parent >= 0, self._grids.rank[self._micro_parent.clip(0)], n)
            micro_order = np.array(
                sorted(range(len(self.micro_codes)), key=lambda j: (parent_rank[j], self.micro_codes[j]))
            )
            self._micro = _Layer(np.asarray(micro_geometries, dtype=object), micro_order, max_cells)

        # Snapping happens in metres.
        if metric_crs is None:
            b = shapely.bounds(geometries)
            metric_crs = metric_crs_for(float(np.nanmean((b[:, 0] + b[:, 2]) / 2)) if n else 114.0)
        self.metric_crs = metric_crs
        self._to_metric = transformer(STORAGE_CRS, metric_crs)
        metric = shapely.transform(
            geometries, lambda xy: np.column_stack(self._to_metric.transform(xy[:, 0], xy[:, 1]))
        )
        self._metric_tree = shapely.STRtree(metric)
        self.build_seconds = time.perf_counter() - start

    @property
    def edge_share(self) -> float:
        """Share of the grid raster's cells that need the exact lookup."""
        return self._grids.edge_share

    def assign(self, lon: np.ndarray, lat: np.ndarray, *, chunk: int = 1_000_000) -> BatchResult:
        """Apply the assignment rule to every (lon, lat) in storage coordinates."""
        lon = np.ravel(np.asarray(lon, dtype=np.float64))
        lat = np.ravel(np.asarray(lat, dtype=np.float64))
        if lon.shape != lat.shape:
            raise ValueError("lon and lat must have the same length")
        n = len(lon)
        out = BatchResult(
            np.full(n, UNASSIGNED, dtype=np.uint8),
            np.full(n, NONE, dtype=np.int32),
            np.full(n, NONE, dtype=np.int32),
            np.full(n, np.nan),
            np.full(n, NONE, dtype=np.int32),
            np.full(n, np.nan),
        )
        for s in range(0, n, max(int(chunk), 1)):
            self._assign_chunk(lon[s : s + chunk], lat[s : s + chunk], out, slice(s, s + chunk))
        return out

    def _assign_chunk(self, x: np.ndarray, y: np.ndarray, out: BatchResult, at: slice) -> None:
        """Fill out[at] for one chunk of points."""
        grid = self._grids.gather(x, y)
        edge = np.flatnonzero(grid == _EDGE)
        if len(edge):
            grid[edge] = self._grids.best(x[edge], y[edge])
        out.grid[at] = grid
        covered = np.flatnonzero(grid >= 0)
        out.status[at][covered] = ASSIGNED
        out.distance_m[at][covered] = 0.0
        if self._micro is not None and len(covered):
            out.micro_grid[at][covered] = self._micro_of(x[covered], y[covered], grid[covered])

        loose = np.flatnonzero((grid < 0) & np.isfinite(x) & np.isfinite(y))
        if not len(loose):
            return
        near, dist = self._nearest(x[loose], y[loose])
        snap = (near >= 0) & (dist <= self.snap_tolerance_m)
        out.status[at][loose[snap]] = SNAPPED
        out.grid[at][loose[snap]] = near[snap]
        out.distance_m[at][loose[snap]] = dist[snap]
        out.nearest[at][loose[~snap]] = near[~snap]
        out.nearest_m[at][loose[~snap]] = dist[~snap]

    def _micro_of(self, x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
        """Micro-grid per covered point: lowest code among its chosen grid's covering micro-grids."""
        assert self._micro is not None
        micro = self._micro.gather(x, y)
        parent = np.where(micro >= 0, self._micro_parent[micro.clip(0)], NONE)
        unsure = np.flatnonzero((micro == _EDGE) | ((micro >= 0) & (parent != grid)))
        if len(unsure):
            point, m = self._micro.covering(x[unsure], y[unsure])
            own = self._micro_parent[m] == grid[unsure][point]
            rank = _min_per(point[own], self._micro.rank[m[own]], len(unsure))
            micro[unsure] = np.where(rank >= 0, self._micro.order[rank.clip(0)], NONE)
        return micro

    def _nearest(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest grid (lowest code among equidistant ones) and metres, measured in metric_crs."""
        mx, my = self._to_metric.transform(x, y)
        (point, g), d = self._metric_tree.query_nearest(
            shapely.points(mx, my), return_distance=True, all_matches=True
        )
        dist = np.full(len(x), np.nan)
        dist[point] = d  # every match of a point is at the same distance
        rank = _min_per(point, self._code_rank[g], len(x))
        return np.where(rank >= 0, self._by_code[rank.clip(0)], NONE).astype(np.int32), dist
