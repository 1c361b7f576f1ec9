"""The grids as an exact raster (storage lon/lat): which grid wins everywhere in a cell, or which
candidates an edge cell has. geo.lookup answers points with it; store.grid_raster keeps it in PostGIS.

Why a raster can give exact answers
-----------------------------------
A raster of cells (in storage lon/lat) is laid over the grids' extent. For each cell we know

* whether any polygon edge touches it: every vertex and every crossing of an edge with a cell line
  marks the cells whose closed square, widened by `_EPS` of a cell, contains it. A segment that
  touches a closed cell either ends in it or crosses its border, so no touched cell is missed; the
  widening is far larger than the rounding of the cell arithmetic (~1e-12 cells);
* the best polygon covering the cell centre: a scanline along the centre lines (even-odd rule)
  keeps the smallest precedence rank per cell. (rasterio's burn would do the same, but handing it
  100,000 shapely polygons costs seconds; the crossings are computed here anyway.)

A cell that no edge touches lies wholly inside or wholly outside each polygon (it is connected and
no boundary crosses it), so every point in it is covered by exactly the polygons that cover its
centre, and the centre's winner is the answer: one numpy gather. The centre is at least half a cell
from every edge, so rounding cannot flip the scanline's decision there.

Points in edge cells (a minority, given the cell size) are tested exactly against the cell's
candidates, the polygons whose bounding box meets the cell (a polygon covering a point has the
point in its box, so none is missed), best first: the first that covers the point wins. The test
is a crossing count whose orientation signs are certified by Shewchuk's orient2d error bound; a
point on or within rounding of an edge or vertex (an uncertain sign), or a polygon of more than
_MAX_SEGMENTS edges, goes to GEOS `intersects_xy`. Boundary points count, as in `intersects`.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import shapely

from geo.assignment import grid_precedence

NONE = -1  # no grid / micro-grid
EDGE = -2  # raster values <= EDGE mark edge cells: EDGE - value is the edge cell's number
_EPS = 1e-6  # widening of a cell (in cells) when marking touched cells
_CELLS_PER_WIDTH = 32  # raster cell = median polygon width / this, unless max_cells is reached
_CHUNK = 4_000_000  # segments / (cell, polygon) pairs handled at once while building
_MAX_SEGMENTS = 256  # polygons with more segments are tested by GEOS (prepared), not by numpy
_CCW_ERRBOUND = (3.0 + 16.0 * 2.0**-53) * 2.0**-53  # Shewchuk's ccwerrboundA
_MAX_KEY = np.iinfo(np.int64).max


def min_per(owner: np.ndarray, key: np.ndarray, n: int) -> np.ndarray:
    """The smallest key of each of n owners among (owner, key) pairs; -1 where an owner has none."""
    best = np.full(n, _MAX_KEY, dtype=np.int64)
    np.minimum.at(best, owner, key)
    best[best == _MAX_KEY] = NONE
    return best


def expand_runs(start: np.ndarray | int, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expand runs: starts [10, 20], counts [2, 3] -> run of each row [0 0 1 1 1], row [10 11 20 21 22]."""
    count = np.asarray(count, dtype=np.int64)
    which = np.repeat(np.arange(len(count)), count)
    offset = np.asarray(start, dtype=np.int64) - (np.cumsum(count) - count)
    return which, np.arange(len(which)) + (offset[which] if offset.ndim else offset[()])


def chunks(sizes: np.ndarray) -> Iterator[slice]:
    """Consecutive slices of items whose sizes add up to about _CHUNK each."""
    ends = np.cumsum(sizes)
    cuts = np.searchsorted(ends, np.arange(_CHUNK, ends[-1] if len(ends) else 0, _CHUNK), side="right")
    bounds = np.unique(np.concatenate([[0], cuts, [len(sizes)]]))
    return (slice(a, b) for a, b in itertools.pairwise(bounds.tolist()))


def segments(geometries: np.ndarray) -> tuple[np.ndarray, ...]:
    """Boundary segments (every ring) as ax, ay, bx, by and the polygon's index, grouped by polygon."""
    present = np.flatnonzero(~(shapely.is_missing(geometries) | shapely.is_empty(geometries)))
    rings, owner = shapely.get_parts(shapely.boundary(geometries[present]), return_index=True)
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    first = np.flatnonzero(ring[1:] == ring[:-1])  # a segment: a coordinate and the next in its ring
    return xy[first, 0], xy[first, 1], xy[first + 1, 0], xy[first + 1, 1], present[owner[ring[first]]]


@dataclass(frozen=True)
class Cells:
    """A regular grid of cells; row 0 is at the top (largest y), flat index = row * ncols + col."""

    x0: float
    y0: float
    dx: float
    dy: float
    ncols: int
    nrows: int

    @classmethod
    def around(cls, bounds: tuple[float, float, float, float], dx: float, dy: float) -> Cells:
        """Cells of dx by dy over `bounds` with one spare cell on every side."""
        minx, miny, maxx, maxy = bounds
        ncols, nrows = math.ceil((maxx - minx) / dx) + 2, math.ceil((maxy - miny) / dy) + 2
        return cls(float(minx - dx), float(maxy + dy), float(dx), float(dy), ncols, nrows)

    @property
    def size(self) -> int:
        """Number of cells."""
        return self.ncols * self.nrows

    def uv(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cell coordinates (column, row, as floats): the one formula everything uses."""
        return (x - self.x0) / self.dx, (self.y0 - y) / self.dy

    def box_spans(self, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """First and last column, first and last row of the cells each box (minx, miny, maxx, maxy
        per row of `bounds`) meets, widened by _EPS so a box on a cell edge takes both cells."""
        u0, v1 = self.uv(bounds[:, 0], bounds[:, 1])
        u1, v0 = self.uv(bounds[:, 2], bounds[:, 3])
        c0 = np.floor(u0 - _EPS).astype(np.int64).clip(0, self.ncols - 1)
        c1 = np.floor(u1 + _EPS).astype(np.int64).clip(0, self.ncols - 1)
        r0 = np.floor(v0 - _EPS).astype(np.int64).clip(0, self.nrows - 1)
        r1 = np.floor(v1 + _EPS).astype(np.int64).clip(0, self.nrows - 1)
        return c0, c1, r0, r1

    def touched(
        self, ax: np.ndarray, ay: np.ndarray, bx: np.ndarray, by: np.ndarray
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(cell, segment) pairs, in chunks and with repeats: the cells each segment touches."""
        ua, va = self.uv(ax, ay)
        ub, vb = self.uv(bx, by)
        for s in range(0, len(ua), _CHUNK // 8):
            i = np.arange(s, min(s + _CHUNK // 8, len(ua)))
            yield self._widened(ua[i], va[i], i)  # vertices
            yield self._widened(ub[i], vb[i], i)
            k, b, j = self._crossings(ua[i], va[i], ub[i], vb[i])  # column lines u = k
            yield self._widened(k, b, i[j])
            k, b, j = self._crossings(va[i], ua[i], vb[i], ub[i])  # row lines v = k
            yield self._widened(b, k, i[j])

    @staticmethod
    def _crossings(
        a0: np.ndarray, b0: np.ndarray, a1: np.ndarray, b1: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Points (k, b) where segments (a0, b0)-(a1, b1) meet the lines a = k (k integer), and which."""
        lo, hi = np.ceil(np.minimum(a0, a1)), np.floor(np.maximum(a0, a1))
        # A segment lying on a line a = k is found by its vertices and the other direction.
        which, k = expand_runs(lo.astype(np.int64), np.where(a0 != a1, hi - lo + 1, 0).clip(0))
        t = (k - a0[which]) / (a1[which] - a0[which])
        return k, b0[which] + t * (b1[which] - b0[which]), which

    def _widened(self, u: np.ndarray, v: np.ndarray, item: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(cell, item) for every cell whose closed square widened by _EPS contains a point (u, v)."""
        c0, c1, r0, r1 = np.floor(u - _EPS), np.floor(u + _EPS), np.floor(v - _EPS), np.floor(v + _EPS)
        two_c, two_r = c1 != c0, r1 != r0  # near a cell line: the cells on both sides
        both = two_c & two_r
        col = np.concatenate([c0, c1[two_c], c0[two_r], c1[both]])
        row = np.concatenate([r0, r0[two_c], r1[two_r], r1[both]])
        item = np.concatenate([item, item[two_c], item[two_r], item[both]])
        ok = (col >= 0) & (col < self.ncols) & (row >= 0) & (row < self.nrows)
        return row[ok].astype(np.int64) * self.ncols + col[ok].astype(np.int64), item[ok]


class Layer:
    """Polygons in a precedence order: a raster for the gather, candidate lists for edge cells."""

    def __init__(
        self,
        geometries: np.ndarray,
        codes: Sequence[str],
        order: np.ndarray,
        max_cells: int,
        parent: np.ndarray | None = None,
        margin: float = 0.0,
    ) -> None:
        """Build over the polygons' extent widened by `margin`; `order` lists indices best first."""
        self.geometries, self.order, self.parent = geometries, order, parent
        self.rank = np.empty(len(geometries), dtype=np.int64)
        self.rank[order] = np.arange(len(geometries))
        shapely.prepare(geometries)
        self.cells: Cells | None = None
        self.edge_share = 0.0
        present = ~(shapely.is_missing(geometries) | shapely.is_empty(geometries))
        if not present.any():
            return
        polygonal = np.isin(shapely.get_type_id(geometries), [3, 6])  # Polygon, MultiPolygon
        invalid = np.flatnonzero(present & ~(polygonal & shapely.is_valid(geometries)))
        if len(invalid):
            bad = geometries[invalid[0]]
            raise ValueError(
                f"{codes[invalid[0]]}: not a valid (multi)polygon ({bad.geom_type}: "
                f"{shapely.is_valid_reason(bad)}); repair it first"
            )
        self.bounds = shapely.bounds(geometries)
        self.ax, self.ay, self.bx, self.by, polygon = segments(geometries)
        self.seg_start = np.searchsorted(polygon, np.arange(len(geometries) + 1))

        bounds = shapely.bounds(geometries[present])
        extent = (
            bounds[:, 0].min() - margin,
            bounds[:, 1].min() - margin,
            bounds[:, 2].max() + margin,
            bounds[:, 3].max() + margin,
        )
        span = max(extent[2] - extent[0], extent[3] - extent[1], 1e-9)
        dx = float(np.median(bounds[:, 2] - bounds[:, 0])) / _CELLS_PER_WIDTH or span / 1000
        dy = float(np.median(bounds[:, 3] - bounds[:, 1])) / _CELLS_PER_WIDTH or span / 1000
        cells = ((extent[2] - extent[0]) / dx + 2) * ((extent[3] - extent[1]) / dy + 2)
        if cells > max_cells:  # coarser cells, same aspect
            dx, dy = dx * math.sqrt(cells / max_cells), dy * math.sqrt(cells / max_cells)
        self.cells = Cells.around(extent, dx, dy)

        self.raster = self._winners(polygon)
        edge = np.zeros(self.cells.size, dtype=bool)
        for cell, _ in self.cells.touched(self.ax, self.ay, self.bx, self.by):
            edge[cell] = True
        edge = np.flatnonzero(edge)
        self.raster[edge] = EDGE - np.arange(len(edge), dtype=np.int32)
        self.edge_share = len(edge) / self.cells.size
        self.start, self.candidates = self._candidates(order[present[order]], edge)

    def _winners(self, polygon: np.ndarray) -> np.ndarray:
        """Raster of the best polygon covering each cell centre (scanline, even-odd), NONE if none."""
        cells = self.cells
        assert cells is not None
        best = np.full(cells.size, len(self.order), dtype=np.int32)
        for polygons in chunks(np.diff(self.seg_start) * 16):  # whole polygons, ~_CHUNK/16 segments
            segs = slice(self.seg_start[polygons.start], self.seg_start[polygons.stop])
            ua, va = cells.uv(self.ax[segs], self.ay[segs])
            ub, vb = cells.uv(self.bx[segs], self.by[segs])
            # Crossings with the centre lines v = j + 0.5, half-open: a ring crosses a line evenly.
            wa, wb = va - 0.5, vb - 0.5
            lo = np.ceil(np.minimum(wa, wb))
            which, row = expand_runs(lo.astype(np.int64), np.ceil(np.maximum(wa, wb)) - lo)
            u = ua[which] + (row - wa[which]) / (wb[which] - wa[which]) * (ub[which] - ua[which])
            poly = polygon[segs][which]
            along = np.lexsort((u, row, poly))  # in and out alternate along a polygon's line
            u, row, poly = u[along], row[along], poly[along]
            first = np.ceil(u[0::2] - 0.5).clip(0, cells.ncols).astype(np.int64)  # first centre in
            after = np.ceil(u[1::2] - 0.5).clip(0, cells.ncols).astype(np.int64)  # first centre out
            begin, length = row[0::2] * cells.ncols + first, (after - first).clip(0)
            rank = self.rank[poly[0::2]].astype(np.int32)
            for part in chunks(length):
                run, cell = expand_runs(begin[part], length[part])
                np.minimum.at(best, cell, rank[part][run])
        return np.append(self.order, NONE).astype(np.int32)[best]

    def _candidates(
        self, ranked: np.ndarray, wanted: np.ndarray, widen: tuple[float, float] = (0.0, 0.0)
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per wanted cell (sorted cell numbers), the polygons whose bounding box, widened by
        `widen` (dx, dy), meets the widened cell, best first (CSR)."""
        cells = self.cells
        assert cells is not None
        b = shapely.bounds(self.geometries[ranked]) + np.array([-widen[0], -widen[1], widen[0], widen[1]])
        c0, c1, r0, r1 = cells.box_spans(b)
        # Each row of a polygon's box is a run of cells; keep the runs' cells that are wanted.
        which, row = expand_runs(r0, r1 - r0 + 1)
        begin, length, polygon = (
            row * cells.ncols + c0[which],
            (c1 - c0 + 1)[which],
            ranked[which],
        )
        is_wanted = np.zeros(cells.size, dtype=bool)
        is_wanted[wanted] = True
        found, owner = [], []
        for part in chunks(length):
            run, cell = expand_runs(begin[part], length[part])
            keep = np.flatnonzero(is_wanted[cell])
            found.append(cell[keep].astype(np.int32))  # fewer than 2^31 cells
            owner.append(polygon[part][run[keep]].astype(np.int32))
            del run, cell, keep
        cell = np.concatenate(found)
        del found
        by_cell = np.argsort(cell, kind="stable")  # stable: still best first within a cell
        start = np.append(np.searchsorted(cell[by_cell], wanted), len(cell))
        return start, np.concatenate(owner)[by_cell]

    def gather(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Raster value per point: the winner, NONE, or an edge cell (<= EDGE)."""
        out = np.full(len(x), NONE, dtype=np.int32)
        if self.cells is None:
            return out
        u, v = self.cells.uv(x, y)
        inside = (u >= 0) & (u < self.cells.ncols) & (v >= 0) & (v < self.cells.nrows)  # False for NaN
        out[inside] = self.raster[v[inside].astype(np.int64) * self.cells.ncols + u[inside].astype(np.int64)]
        return out

    def first_cover(
        self, x: np.ndarray, y: np.ndarray, value: np.ndarray, parent: np.ndarray | None = None
    ) -> np.ndarray:
        """Exact winner for points gathered in edge cells (`value`); if `parent`, only its children.

        Round `step` tests each unresolved point's step-th candidate (best first), so the first
        hit is the winner and most points are done after a test or two.
        """
        out = np.full(len(x), NONE, dtype=np.int32)
        if not len(x):
            return out
        number = EDGE - value.astype(np.int64)
        start, left = self.start[number], self.start[number + 1] - self.start[number]
        todo, step = np.flatnonzero(left > 0), 0
        while len(todo):
            candidate, px, py = self.candidates[start[todo] + step], x[todo], y[todo]
            box = self.bounds[candidate]  # a point outside the box is not covered: skip the test
            test = (px >= box[:, 0]) & (px <= box[:, 2]) & (py >= box[:, 1]) & (py <= box[:, 3])
            if parent is not None:  # micro-grids: only the chosen grid's own
                test &= self.parent[candidate] == parent[todo]  # type: ignore[index]
            hit = np.zeros(len(todo), dtype=bool)
            hit[test] = self._covers(px[test], py[test], candidate[test])
            out[todo[hit]] = candidate[hit]
            step += 1
            todo = todo[~hit & (left[todo] > step)]
        return out

    def _covers(self, x: np.ndarray, y: np.ndarray, polygon: np.ndarray) -> np.ndarray:
        """Exact point-in-polygon, boundary included, for (x[i], y[i], polygon[i]) pairs."""
        count = self.seg_start[polygon + 1] - self.seg_start[polygon]
        small = count <= _MAX_SEGMENTS
        pair, s = expand_runs(self.seg_start[polygon], np.where(small, count, 0))
        py = y[pair]
        ay, by = self.ay[s] - py, self.by[s] - py  # signs exact: fl(a - b) has the sign of a - b
        spans = np.flatnonzero(ay * by <= 0)  # the point's y is within the segment's y-range
        pair, s, ay, by = pair[spans], s[spans], ay[spans], by[spans]
        px = x[pair]
        ax, bx = self.ax[s] - px, self.bx[s] - px
        left, right = ax * by, ay * bx
        det = left - right  # > 0: the point is left of a -> b
        sure = np.abs(det) > _CCW_ERRBOUND * (np.abs(left) + np.abs(right))
        crosses = ((ay > 0) != (by > 0)) & ((det > 0) == (by > 0))  # the ray to +x crosses a -> b
        inside = np.bincount(pair[crosses], minlength=len(polygon)) % 2 == 1
        unsure = ~small | (np.bincount(pair[~sure], minlength=len(polygon)) > 0)
        inside[unsure] = shapely.intersects_xy(self.geometries[polygon[unsure]], x[unsure], y[unsure])
        return inside

    @functools.cached_property
    def tree(self) -> shapely.STRtree:
        """STRtree of the polygons (built on first use)."""
        return shapely.STRtree(self.geometries)

    def covering(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact (point, polygon) pairs where the polygon covers the point (STRtree)."""
        return self.tree.query(shapely.points(x, y), predicate="intersects")


def grid_layer(
    codes: Sequence[str],
    kinds: Sequence[str | None],
    geometries: np.ndarray,
    max_cells: int,
    margin: float = 0.0,
) -> Layer:
    """The grids' layer, polygons ordered by the rule's precedence (geo.assignment)."""
    ranked = sorted(range(len(codes)), key=lambda i: grid_precedence(kinds[i], codes[i]))
    return Layer(geometries, codes, np.array(ranked, dtype=np.int64), max_cells, margin=margin)


@dataclass(frozen=True)
class GridRaster:
    """The grid raster, for stores outside this module (store.grid_raster keeps it in PostGIS).

    Cell (row, col) is the one `floor(cells.uv(x, y))` names (row 0 at the top); its value is
    the index of the grid that wins everywhere in it, NONE, or EDGE - n for the n-th edge cell,
    whose candidates (grid indices, best first) are candidates[start[n]:start[n + 1]]. The k-th
    near cell, near_cells[k], is a NONE cell within `near` (dlon, dlat) of the grids
    near_candidates[near_start[k]:near_start[k + 1]] (by bounding box); other NONE cells are
    farther than that from every grid.
    """

    cells: Cells
    values: np.ndarray  # int32, nrows * ncols, row-major
    start: np.ndarray
    candidates: np.ndarray
    near_cells: np.ndarray
    near_start: np.ndarray
    near_candidates: np.ndarray
    edge_share: float


def grid_raster(
    codes: Sequence[str],
    kinds: Sequence[str | None],
    geometries: np.ndarray,
    *,
    near: tuple[float, float] = (0.0, 0.0),
    max_cells: int = 16_000_000,
) -> GridRaster:
    """Rasterize grids in the rule's precedence over their extent widened by `near` (degrees)."""
    geometries = np.asarray(geometries, dtype=object)
    layer = grid_layer(codes, kinds, geometries, max_cells, margin=max(near))
    ranked = layer.order
    if layer.cells is None:  # no grid at all: an empty raster
        empty, zero = np.empty(0, dtype=np.int32), np.zeros(1, dtype=np.int64)
        return GridRaster(Cells(0.0, 0.0, 1.0, 1.0, 0, 0), empty, zero, empty, empty, zero, empty, 0.0)
    present = ~(shapely.is_missing(geometries) | shapely.is_empty(geometries))
    none = np.flatnonzero(layer.raster == NONE)
    near_start, near_candidates = layer._candidates(ranked[present[ranked]], none, near)
    has_any = np.diff(near_start) > 0
    near_cells, near_start = none[has_any], np.append(near_start[:-1][has_any], len(near_candidates))
    return GridRaster(
        layer.cells, layer.raster, layer.start, layer.candidates, near_cells, near_start, near_candidates,
        layer.edge_share,
    )  # fmt: skip

