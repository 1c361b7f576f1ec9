"""The nearest grid in metres, for points no grid covers (geo.lookup's snapping).

Points no grid covers are measured in metres, in the metric CRS, against the projected boundary
segments kept in square buckets: the distance to a segment noted for the point's bucket bounds the
answer, then every segment in the buckets within that bound is measured. That is exact for a point
outside the projected polygons; a near tie between grids, a distance within 1e-6 m of the
tolerance, or a point close enough to a grid to lie inside its projected polygon (whose edges are
chords of the projected lon/lat edges) is re-measured by GEOS (`query_nearest`, all equidistant
matches). Ties go to the lowest code. Reported distances equal GEOS's to ~1e-9 m.
"""

from __future__ import annotations

import functools

import numpy as np
import shapely

from geo.grid_raster import NONE, Cells, expand_runs, min_per, segments

_TIE_M = 1e-6  # metric distances this close are re-measured by GEOS
_BUCKETS_PER_WIDTH = 2  # nearest-search bucket = median polygon width / this


def _segment_distance(
    px: np.ndarray, py: np.ndarray, ax: np.ndarray, ay: np.ndarray, bx: np.ndarray, by: np.ndarray
) -> np.ndarray:
    """Distance from points (px, py) to segments (ax, ay)-(bx, by), pairwise."""
    dx, dy, ex, ey = bx - ax, by - ay, px - ax, py - ay
    length2 = dx * dx + dy * dy
    t = np.clip((ex * dx + ey * dy) / np.where(length2 > 0, length2, 1.0), 0.0, 1.0)
    fx, fy = ex - t * dx, ey - t * dy
    return np.sqrt(fx * fx + fy * fy)


class Nearest:
    """Nearest polygon in metres: numpy search over bucketed segments, GEOS when unsure."""

    def __init__(self, geometries: np.ndarray, code_rank: np.ndarray, tolerance_m: float) -> None:
        """Index projected (metric) polygons; `code_rank` orders them by code for ties."""
        self.geometries, self.code_rank, self.tolerance_m = geometries, code_rank, tolerance_m
        self.by_code = np.argsort(code_rank)
        self.ax, self.ay, self.bx, self.by, self.polygon = segments(geometries)
        self.cells: Cells | None = None
        if not len(self.ax):
            return
        xs, ys = np.concatenate([self.ax, self.bx]), np.concatenate([self.ay, self.by])
        self.box = (xs.min(), ys.min(), xs.max(), ys.max())
        b = shapely.bounds(geometries)
        self.bucket = (
            float(np.nanmedian(np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]))) / _BUCKETS_PER_WIDTH or 1.0
        )
        # No spare buckets (vertices on the far edges are kept by the widening in `touched`).
        ncols, nrows = (
            int((hi - lo) // self.bucket) + 1 for lo, hi in ((xs.min(), xs.max()), (ys.min(), ys.max()))
        )
        self.cells = Cells(self.box[0], self.box[3], self.bucket, self.bucket, ncols, nrows)
        touched = self.cells.touched(self.ax, self.ay, self.bx, self.by)
        key = np.sort(np.concatenate([cell * len(self.ax) + seg for cell, seg in touched]))
        key = key[np.append(True, key[1:] != key[:-1])]  # each (bucket, segment) once
        self.segs, bucket = key % len(self.ax), key // len(self.ax)
        self.start = np.searchsorted(bucket, np.arange(self.cells.size + 1))
        self.hint = self._hints(bucket)
        # A point outside every storage polygon lies inside a projected one only within the sag
        # between a projected edge and its chord (~ L^2 / 5e7 m); closer points go to GEOS.
        longest = float(np.hypot(self.bx - self.ax, self.by - self.ay).max())
        self.near_m = 1.0 + longest**2 * 1e-6

    @functools.cached_property
    def tree(self) -> shapely.STRtree:
        """STRtree of the polygons, built on first use (only unsure points need GEOS)."""
        return shapely.STRtree(self.geometries)

    def _hints(self, bucket: np.ndarray) -> np.ndarray:
        """Per bucket, one segment near it: its own nearest to its centre, else a neighbour's."""
        cells = self.cells
        assert cells is not None
        cx = cells.x0 + (bucket % cells.ncols + 0.5) * cells.dx
        cy = cells.y0 - (bucket // cells.ncols + 0.5) * cells.dy
        d = _segment_distance(
            cx, cy, self.ax[self.segs], self.ay[self.segs], self.bx[self.segs], self.by[self.segs]
        )
        by_distance = np.lexsort((d, bucket))
        first = by_distance[np.append(True, bucket[by_distance][1:] != bucket[by_distance][:-1])]
        hint = np.full(cells.size, NONE, dtype=np.int64)
        hint[bucket[first]] = self.segs[first]
        hint = hint.reshape(cells.nrows, cells.ncols)
        while (hint < 0).any():  # empty buckets take a neighbour's hint, spreading outwards
            for axis, step in ((0, 1), (0, -1), (1, 1), (1, -1)):
                shifted = np.roll(hint, step, axis=axis)
                edge = (
                    (0 if step > 0 else -1, slice(None))
                    if axis == 0
                    else (slice(None), 0 if step > 0 else -1)
                )
                shifted[edge] = NONE  # no wrapping around
                hint = np.where(hint < 0, shifted, hint)
        return hint.ravel()

    def query(
        self, x: np.ndarray, y: np.ndarray, limit_m: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Nearest polygon (lowest code among equidistant ones, -1 if none) and its distance.

        With `limit_m`, only polygons that near are looked for: a point with none gets -1 and an
        infinite distance (a far point then costs a few buckets instead of a wide search).
        """
        n = len(x)
        if self.cells is None:
            return np.full(n, NONE, dtype=np.int32), np.full(n, np.nan)
        # 1. An upper bound: the distance to the hint segment of the bucket of q, the point clamped
        #    into the segments' box.
        minx, miny, maxx, maxy = self.box
        u, v = self.cells.uv(np.clip(x, minx, maxx), np.clip(y, miny, maxy))
        col = np.floor(u).astype(np.int64).clip(0, self.cells.ncols - 1)
        row = np.floor(v).astype(np.int64).clip(0, self.cells.nrows - 1)
        bound = self._distance(x, y, np.arange(n), self.hint[row * self.cells.ncols + col])
        if limit_m is not None:
            bound = np.minimum(bound, limit_m + 2 * _TIE_M)
        # 2. Every segment in the buckets that meet the disk of that radius around the point.
        found = np.flatnonzero(np.isfinite(bound))
        p, seg = self._segments_in(*self._disk(x[found], y[found], bound[found] + 2 * _TIE_M), found)
        d = self._distance(x, y, p, seg)
        best = np.full(n, np.inf)
        np.minimum.at(best, p, d)
        close = d <= best[p] + _TIE_M
        p, rank = p[close], self.code_rank[self.polygon[seg[close]]]
        lowest = min_per(p, rank, n)
        highest = np.full(n, NONE, dtype=np.int64)
        np.maximum.at(highest, p, rank)
        # Nothing within a limit is a sure answer; nothing within the bound of a hint is not.
        unsure = (~np.isfinite(best) if limit_m is None else np.zeros(n, dtype=bool)) | (lowest != highest)
        unsure |= np.isfinite(best) & (best <= self.near_m)
        unsure |= np.abs(best - self.tolerance_m) <= _TIE_M
        nearest = np.where(lowest >= 0, self.by_code[lowest.clip(0)], NONE).astype(np.int32)
        redo = np.flatnonzero(unsure)
        if len(redo):
            nearest[redo], best[redo] = self._geos(x[redo], y[redo], best[redo] + 2 * _TIE_M)
        return nearest, best

    def _segments_in(self, p: np.ndarray, bucket: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, ...]:
        """(point, segment) for the segments in each (p, bucket); points renamed through owner."""
        which, at = expand_runs(self.start[bucket], self.start[bucket + 1] - self.start[bucket])
        return owner[p[which]], self.segs[at]

    def _distance(self, x: np.ndarray, y: np.ndarray, p: np.ndarray, seg: np.ndarray) -> np.ndarray:
        """Distance from point p to segment seg, pairwise."""
        return _segment_distance(x[p], y[p], self.ax[seg], self.ay[seg], self.bx[seg], self.by[seg])

    def _disk(self, x: np.ndarray, y: np.ndarray, radius: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(point, bucket) for the buckets of the grid that meet the disk of `radius` around each point."""
        cells, size = self.cells, self.bucket
        assert cells is not None
        c0 = np.floor((x - radius - cells.x0) / size).clip(0, cells.ncols - 1).astype(np.int64)
        c1 = np.floor((x + radius - cells.x0) / size).clip(0, cells.ncols - 1).astype(np.int64)
        meets = (x + radius >= cells.x0) & (x - radius <= cells.x0 + cells.ncols * size)
        p, column = expand_runs(c0, (c1 - c0 + 1) * meets)
        left = cells.x0 + column * size  # the disk meets the column over y = py +- half
        gap = np.maximum.reduce([left - x[p], x[p] - left - size, np.zeros(len(p))])
        half = np.sqrt(np.maximum(radius[p] ** 2 - gap**2, 0.0))
        r0 = np.floor((cells.y0 - y[p] - half) / size).clip(0, cells.nrows).astype(np.int64)
        r1 = np.floor((cells.y0 - y[p] + half) / size).clip(-1, cells.nrows - 1).astype(np.int64)
        q, row = expand_runs(r0, (r1 - r0 + 1).clip(0) * (gap <= radius[p]))
        return p[q], row * cells.ncols + column[q]

    def _geos(
        self, x: np.ndarray, y: np.ndarray, within: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The same answer from GEOS: query_nearest with all equidistant matches.

        `within`: per point, a distance some polygon is at (or less); then only the polygons that
        may be that near are asked (a tree of all of them costs seconds to build at 100,000 grids,
        and a loaded index has its polygons still undecoded).
        """
        which = self._near_polygons(x, y, within)
        tree = self.tree if which is None else shapely.STRtree(self.geometries[which])
        (point, g), d = tree.query_nearest(shapely.points(x, y), return_distance=True, all_matches=True)
        if which is not None:
            g = which[g]
        dist = np.full(len(x), np.nan)
        dist[point] = d  # all matches of a point are at the same distance
        rank = min_per(point, self.code_rank[g], len(x))
        return np.where(rank >= 0, self.by_code[rank.clip(0)], NONE).astype(np.int32), dist

    def _near_polygons(self, x: np.ndarray, y: np.ndarray, within: np.ndarray | None) -> np.ndarray | None:
        """Every polygon that may be nearest to a point (None: ask them all).

        The nearest polygon of a point is at `within` or less: outside it, its boundary is that
        near; if the point lies inside it (projected, see `near_m`), its boundary is within
        near_m. So the polygons with a segment in the buckets within the larger radius are enough.
        """
        if within is None or not np.isfinite(within).all():
            return None
        radius = np.maximum(within, self.near_m)
        _, seg = self._segments_in(*self._disk(x, y, radius), np.arange(len(x)))
        return np.unique(self.polygon[seg])
