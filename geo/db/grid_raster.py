"""The grid raster kept in PostGIS: bulk assignment by arithmetic and hash joins.

A GiST probe costs ~50 µs on this kind of machine, so a join that probes once per point (or once
per grid) cannot be fast. Instead `geo.lookup.grid_raster` rasterizes the current grids exactly
(every point of an interior cell has the same answer; an edge cell lists its candidate grids, best
first), and the raster is stored here, cut into chunks of CHUNK cells along each row:
`grid_raster_chunks.cells` holds the chunk's CHUNK cell values, then its edge cells' candidates.

Cell values (int4):
  v >= 0       grid number v (`grid_raster_grids`) wins everywhere in the cell
  FAR (-1)     no grid, and none within the snap tolerance of any point of the cell
  NEAR (-2)    no grid, but one may lie within the tolerance
  v <= -3      an edge cell: cells[-v] is its number of candidates n, cells[-v + 1 : -v + n]
               the candidates' grid numbers, best first (arrays are 1-based in SQL)

Chunks with nothing but FAR cells are not stored, and the raster reaches the tolerance beyond the
grids, so a point outside it or without a chunk is far from every grid.

The raster describes the grids of one moment: `grid_raster.unit_changes` is the value of the
`unit_change_count` row (bumped by every statement that writes unit versions) it was built from,
and `current_raster` rebuilds it when that moved on or the tolerance differs.
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo.crs import METRES_PER_DEGREE_MIN, degrees_spanning
from geo.lookup import EDGE, NONE, GridRaster, grid_raster

CHUNK = 256  # cells per stored row: ~1 KB of values plus the edge cells' candidates
MAX_CELLS = 16_000_000  # raster size cap (as in the in-process index: 64 MB of values)
FAR, NEAR = -1, -2
_INT4_OID = 23
_LOCK = 0x67726964  # advisory lock key: one rebuild at a time ("grid")


@dataclass(frozen=True)
class RasterInfo:
    """How the stored raster is laid out (the `grid_raster` row)."""

    x0: float
    y0: float
    dx: float
    dy: float
    ncols: int
    nrows: int
    chunk: int
    edge_share: float
    build_seconds: float
    rebuilt: bool  # built by this call

    @property
    def chunks_per_row(self) -> int:
        """Stored chunks along one raster row."""
        return -(-self.ncols // self.chunk)


def tolerance_degrees(tolerance_m: float) -> float:
    """Degrees (lon or lat) that surely span tolerance_m metres (1° ≥ 60 km up to 57°N)."""
    return tolerance_m / METRES_PER_DEGREE_MIN


def current_raster(
    session: Session, *, tolerance_m: float, progress: Callable[[str], None] | None = None
) -> RasterInfo:
    """The stored raster of the current grids, rebuilt first if the grids or tolerance changed."""
    info = _stored(session, tolerance_m)
    if info is not None:
        return info
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
    info = _stored(session, tolerance_m)  # another session may have rebuilt it meanwhile
    return info if info is not None else rebuild(session, tolerance_m=tolerance_m, progress=progress)


def _stored(session: Session, tolerance_m: float) -> RasterInfo | None:
    """The stored raster if it matches the current grids and tolerance, else None."""
    row = session.execute(
        text(
            """SELECT r.x0, r.y0, r.dx, r.dy, r.ncols, r.nrows, r.chunk, r.edge_share, r.build_seconds
               FROM grid_raster r, unit_change_count c
               WHERE r.unit_changes = c.n AND r.tolerance_m = :tolerance"""
        ),
        {"tolerance": tolerance_m},
    ).first()
    return None if row is None else RasterInfo(*row, rebuilt=False)


def rebuild(
    session: Session, *, tolerance_m: float, progress: Callable[[str], None] | None = None
) -> RasterInfo:
    """Rasterize the current grids and replace the stored raster (in the session's transaction)."""
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    changes = session.execute(text("SELECT n FROM unit_change_count")).scalar_one()
    rows = session.execute(
        text(
            """SELECT v.id, v.code, v.kind, ST_AsBinary(v.geom) FROM unit_versions v
               JOIN units u USING (code)
               WHERE u.level = 'grid' AND v.valid_to IS NULL ORDER BY v.code"""
        )
    ).all()
    say(f"rasterizing {len(rows):,} grids ...")
    geometries = shapely.from_wkb([bytes(r[3]) for r in rows])
    bounds = shapely.total_bounds(geometries) if rows else np.zeros(4)
    span = degrees_spanning(tolerance_m, max(abs(bounds[1]), abs(bounds[3])) + 1.0)  # 1°: margin
    raster = grid_raster(
        [r.code for r in rows], [r.kind for r in rows], geometries, margin=max(span), max_cells=MAX_CELLS
    )
    near = _near(raster, span)
    say(f"storing {raster.ncols:,} x {raster.nrows:,} cells ({raster.edge_share:.0%} on edges) ...")
    session.execute(text("TRUNCATE grid_raster, grid_raster_grids, grid_raster_chunks"))
    raw = session.connection().connection.dbapi_connection
    with raw.cursor() as cur:
        with cur.copy("COPY grid_raster_grids (idx, code, version_id) FROM STDIN") as copy:
            for idx, r in enumerate(rows):
                copy.write_row((idx, r.code, r.id))
        with cur.copy("COPY grid_raster_chunks (key, cells) FROM STDIN (FORMAT BINARY)") as copy:
            for block in _copy_blocks(raster, near):
                copy.write(block)
    seconds = time.perf_counter() - started
    info = RasterInfo(
        raster.x0, raster.y0, raster.dx, raster.dy, raster.ncols, raster.nrows,
        CHUNK, raster.edge_share, seconds, rebuilt=True,
    )  # fmt: skip
    session.execute(
        text(
            """INSERT INTO grid_raster (id, unit_changes, tolerance_m, x0, y0, dx, dy, ncols, nrows,
                                        chunk, edge_share, build_seconds)
               VALUES (1, :changes, :tolerance, :x0, :y0, :dx, :dy, :ncols, :nrows, :chunk,
                       :edge_share, :build_seconds)"""
        ),
        {
            "changes": changes,
            "tolerance": tolerance_m,
            **{k: getattr(info, k) for k in ("x0", "y0", "dx", "dy", "ncols", "nrows", "chunk")},
            "edge_share": info.edge_share,
            "build_seconds": seconds,
        },
    )
    session.execute(text("ANALYZE grid_raster_chunks"))
    say(f"raster of {len(rows):,} grids built in {seconds:.1f} s")
    return info


def _near(raster: GridRaster, span: tuple[float, float]) -> np.ndarray:
    """Per cell: whether a cell some grid touches lies within `span` (dlon, dlat degrees) of it.

    A box of kx columns and ky rows around every touched cell: a cell outside all such boxes is
    at least kx * dx >= dlon (or ky * dy >= dlat) away from every grid, so farther than the
    tolerance the span stands for.
    """
    touched = (raster.values != NONE).reshape(raster.nrows, raster.ncols).astype(np.int32)
    kx, ky = math.ceil(span[0] / raster.dx), math.ceil(span[1] / raster.dy)
    return (_box_sum(touched, ky, kx) > 0).ravel()


def _box_sum(a: np.ndarray, ky: int, kx: int) -> np.ndarray:
    """Sum of `a` over the (2ky+1) x (2kx+1) box around each cell (clipped at the borders)."""
    s = np.zeros((a.shape[0] + 1, a.shape[1] + 1), dtype=np.int64)
    np.cumsum(np.cumsum(a, axis=0), axis=1, out=s[1:, 1:])
    rows, cols = np.arange(a.shape[0]), np.arange(a.shape[1])
    r0, r1 = (rows - ky).clip(0), (rows + ky + 1).clip(max=a.shape[0])
    c0, c1 = (cols - kx).clip(0), (cols + kx + 1).clip(max=a.shape[1])
    return s[r1][:, c1] - s[r0][:, c1] - s[r1][:, c0] + s[r0][:, c0]


def _copy_blocks(raster: GridRaster, near: np.ndarray) -> Iterator[bytes]:
    """The chunks as PostgreSQL binary COPY data: (key int4, cells int4[]) rows."""
    values = raster.values.copy()
    values[(raster.values == NONE) & near] = NEAR  # edges are found below from the raster's own values
    values[(raster.values == NONE) & ~near] = FAR
    per_row = -(-raster.ncols // CHUNK)
    padded = np.full((raster.nrows, per_row * CHUNK), FAR, dtype=np.int32)
    padded[:, : raster.ncols] = values.reshape(raster.nrows, raster.ncols)
    edge = np.zeros(padded.shape, dtype=bool)
    edge[:, : raster.ncols] = (raster.values <= EDGE).reshape(raster.nrows, raster.ncols)
    cells = padded.reshape(-1, CHUNK)  # chunk k is cells[k]; k = row * per_row + col // CHUNK
    # Edge cells, in cell order (so grouped by chunk): their candidate blocks [n, c1, ..., cn].
    edge_at = np.flatnonzero(edge.ravel())
    number = EDGE - cells.ravel()[edge_at].astype(np.int64)
    count = raster.start[number + 1] - raster.start[number]
    chunk_of = edge_at // CHUNK
    block_end = np.cumsum(count + 1)
    chunk_first = np.searchsorted(chunk_of, np.arange(len(cells)))  # first edge cell of each chunk
    base = np.concatenate([[0], block_end])[chunk_first]  # blocks before each chunk's own
    position = CHUNK + 1 + (block_end - (count + 1)) - base[chunk_of]  # 1-based, within the chunk
    cells.ravel()[edge_at] = -position
    blocks = np.empty(int(block_end[-1]) if len(block_end) else 0, dtype=np.int32)
    head = block_end - (count + 1)
    blocks[head] = count
    which, offset = np.repeat(np.arange(len(count)), count), np.arange(int(count.sum()))
    offset -= np.repeat(np.cumsum(count) - count, count)
    blocks[head[which] + 1 + offset] = raster.candidates[raster.start[number][which] + offset]
    extra_end = np.concatenate([[0], block_end])[
        np.searchsorted(chunk_of, np.arange(len(cells)), side="right")
    ]

    keep = np.flatnonzero((cells != FAR).any(axis=1))
    yield b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
    for k in keep.tolist():
        extra = blocks[base[k] : extra_end[k]]
        items = np.concatenate([cells[k], extra])
        body = np.empty((len(items), 2), dtype=">i4")
        body[:, 0], body[:, 1] = 4, items
        yield struct.pack(">hiiiiiiii", 2, 4, k, 20 + 8 * len(items), 1, 0, _INT4_OID, len(items), 1)
        yield body.tobytes()
    yield struct.pack(">h", -1)
