"""In-process point -> grid lookup for large batches, applying the rule of geo.assignment exactly.

The grids' raster (geo.grid_raster: why a raster gives exact answers) answers most points with one
gather and tests the rest exactly; the nearest grid of a point outside every grid is measured in
metres (geo.nearest).

Micro-grids have their own raster, ordered by (parent grid's precedence, code). Its winner is the
answer when its parent is the chosen grid (it then has the lowest code among that grid's covering
micro-grids); in an edge cell only the chosen grid's micro-grids are tried; when an interior
winner belongs to another grid (an overlay) an STRtree query decides.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely

from geo.assignment import Status
from geo.crs import STORAGE_CRS, metric_crs_of, transformer
from geo.grid_raster import EDGE, NONE, Layer, grid_layer, min_per
from geo.nearest import Nearest

STATUSES = (Status.ASSIGNED, Status.SNAPPED, Status.UNASSIGNED)  # BatchResult.status indexes this
ASSIGNED, SNAPPED, UNASSIGNED = 0, 1, 2


@dataclass(frozen=True)
class BatchResult:
    """Per-point answers of GridIndex.assign; indices refer to the index's codes/micro_codes."""

    status: np.ndarray  # uint8 index into STATUSES
    grid: np.ndarray  # int32 grid index, -1 if unassigned
    micro_grid: np.ndarray  # int32 micro-grid index, -1 if none
    distance_m: np.ndarray  # float64: 0 assigned, metres snapped, NaN unassigned
    nearest: np.ndarray  # int32 nearest grid of unassigned points, else -1
    nearest_m: np.ndarray  # float64 distance to it, NaN if none

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
        """Index the grids: valid shapely (multi)polygons in storage lon/lat (None = no geometry).

        max_cells caps each raster (grids, micro-grids): 16M cells take 64 MB as int32.
        """
        started = time.perf_counter()
        self.codes, self.kinds, self.micro_codes = list(codes), list(kinds), list(micro_codes)
        self.snap_tolerance_m = float(snap_tolerance_m)
        geometries = np.asarray(geometries, dtype=object)
        if not len(self.codes) == len(self.kinds) == len(geometries):
            raise ValueError("codes, kinds and geometries must have the same length")
        if len(self.micro_codes) != len(micro_geometries):
            raise ValueError("micro_codes and micro_geometries must have the same length")
        n = len(self.codes)
        self._grids = grid_layer(self.codes, self.kinds, geometries, max_cells)

        # Micro-grids: precedence = (parent grid's precedence, code); a parentless one comes last.
        self._micro: Layer | None = None
        if self.micro_codes:
            index = {c: i for i, c in enumerate(self.codes)}
            parent = np.array([index.get(c[:-3], NONE) for c in self.micro_codes], dtype=np.int64)
            parent_rank = np.where(parent >= 0, self._grids.rank[parent.clip(0)], n)
            micro_ranked = sorted(range(len(parent)), key=lambda j: (parent_rank[j], self.micro_codes[j]))
            micro = np.asarray(micro_geometries, dtype=object)
            self._micro = Layer(
                micro, self.micro_codes, np.array(micro_ranked, dtype=np.int64), max_cells, parent
            )

        # Snapping is measured in metres, in the metric CRS.
        if metric_crs is None:
            metric_crs = metric_crs_of(geometries)
        self.metric_crs = metric_crs
        self._to_metric = transformer(STORAGE_CRS, metric_crs)
        project = self._to_metric.transform
        metric = shapely.transform(geometries, lambda xy: np.column_stack(project(xy[:, 0], xy[:, 1])))
        present = ~(shapely.is_missing(metric) | shapely.is_empty(metric))
        unprojectable = np.flatnonzero(present & ~np.isfinite(shapely.bounds(metric)).all(axis=1))
        if len(unprojectable):
            raise ValueError(f"grid {self.codes[unprojectable[0]]} cannot be projected to {metric_crs}")
        code_rank = np.argsort(np.argsort(np.array(self.codes, dtype=str), kind="stable"))
        self._nearest = Nearest(metric, code_rank, self.snap_tolerance_m)
        self.build_seconds = time.perf_counter() - started

    @property
    def edge_share(self) -> float:
        """Share of the grid raster's cells whose points are tested exactly."""
        return self._grids.edge_share

    def assign(
        self, lon: np.ndarray, lat: np.ndarray, *, chunk: int = 1_000_000, nearest: bool = True
    ) -> BatchResult:
        """Apply the assignment rule to every storage (lon, lat); NaN coordinates stay unassigned.

        `nearest=False` skips finding the nearest grid of unassigned points (batch output has no
        use for it), which makes points far from every grid cheap.
        """
        lon = np.ravel(np.asarray(lon, dtype=np.float64))
        lat = np.ravel(np.asarray(lat, dtype=np.float64))
        if lon.shape != lat.shape:
            raise ValueError("lon and lat must have the same length")
        n = len(lon)
        out = BatchResult(
            status=np.full(n, UNASSIGNED, dtype=np.uint8),
            grid=np.full(n, NONE, dtype=np.int32),
            micro_grid=np.full(n, NONE, dtype=np.int32),
            distance_m=np.full(n, np.nan),
            nearest=np.full(n, NONE, dtype=np.int32),
            nearest_m=np.full(n, np.nan),
        )
        chunk = max(int(chunk), 1)
        for s in range(0, n, chunk):
            self._assign_chunk(lon[s : s + chunk], lat[s : s + chunk], out, slice(s, s + chunk), nearest)
        return out

    def _assign_chunk(self, x: np.ndarray, y: np.ndarray, out: BatchResult, at: slice, nearest: bool) -> None:
        """Fill out[at] (views of the result arrays) for one chunk of points."""
        grid = self._grids.gather(x, y)
        edge = np.flatnonzero(grid <= EDGE)
        grid[edge] = self._grids.first_cover(x[edge], y[edge], grid[edge])
        out.grid[at] = grid
        covered = np.flatnonzero(grid >= 0)
        out.status[at][covered] = ASSIGNED
        out.distance_m[at][covered] = 0.0
        if self._micro is not None:
            out.micro_grid[at][covered] = self._micro_of(x[covered], y[covered], grid[covered])

        loose = np.flatnonzero((grid < 0) & np.isfinite(x) & np.isfinite(y))
        if not len(loose):
            return
        limit = None if nearest else self.snap_tolerance_m
        near, dist = self._nearest.query(*self._to_metric.transform(x[loose], y[loose]), limit)
        snap = (near >= 0) & (dist <= self.snap_tolerance_m)
        out.status[at][loose[snap]] = SNAPPED
        out.grid[at][loose[snap]] = near[snap]
        out.distance_m[at][loose[snap]] = dist[snap]
        if nearest:  # under a limit, what was found beyond it need not be the nearest
            out.nearest[at][loose[~snap]] = near[~snap]
            out.nearest_m[at][loose[~snap]] = dist[~snap]

    def _micro_of(self, x: np.ndarray, y: np.ndarray, grid: np.ndarray) -> np.ndarray:
        """Per covered point: the lowest-coded micro-grid of its chosen grid that covers it, or -1."""
        layer = self._micro
        assert layer is not None and layer.parent is not None
        micro = layer.gather(x, y)
        edge = np.flatnonzero(micro <= EDGE)
        micro[edge] = layer.first_cover(x[edge], y[edge], micro[edge], grid[edge])
        # An interior cell's winner may belong to another grid (an overlay, or a micro-grid
        # sticking out of its grid); then the chosen grid's own micro-grids are looked up exactly.
        other = np.flatnonzero(micro >= 0)
        other = other[layer.parent[micro[other]] != grid[other]]
        if len(other):
            point, m = layer.covering(x[other], y[other])
            own = layer.parent[m] == grid[other][point]
            rank = min_per(point[own], layer.rank[m[own]], len(other))
            micro[other] = np.where(rank >= 0, layer.order[rank.clip(0)], NONE)
        return micro

