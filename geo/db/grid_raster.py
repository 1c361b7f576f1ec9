"""The grid raster kept in PostGIS: bulk assignment by arithmetic and hash joins.

A GiST probe costs ~50 µs on this kind of machine, so a join that probes once per point (or once
per grid) cannot be fast. Instead `geo.lookup.grid_raster` rasterizes the current grids exactly:
every point of an interior cell has the same answer; an edge cell lists its candidate grids, best
first; a near cell, in no grid, lists the grids that may lie within the snap tolerance of it. The
raster is stored here, cut into chunks of CHUNK cells along each row: `grid_raster_chunks.cells`
holds the chunk's CHUNK cell values, then the blocks of its edge and near cells.

Cell values (int4; arrays are 1-based in SQL):
  v >= 0       grid number v (`grid_raster_grids`) wins everywhere in the cell
  FAR (-1)     no grid, and none within the snap tolerance of any point of the cell
  v <= -2      the cell's block starts at cells[-v]: a header h, then |h| grid numbers;
               h > 0: an edge cell, candidates best first; h < 0: a near cell, grids to measure

Chunks with nothing but FAR cells are not stored, and the raster reaches the tolerance beyond the
grids, so a point outside it or without a chunk is far from every grid.

The raster describes the grids of one moment: `grid_raster.unit_changes` is the value of the
`unit_change_count` row (bumped by every statement that writes unit versions) it was built from,
and `current_raster` rebuilds it when that moved on or the tolerance differs.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import numpy as np
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo.crs import degrees_spanning
from geo.db.geometry import from_wkb_array
from geo.db.units import valid_at_sql
from geo.lookup import EDGE, Cells, GridRaster, grid_raster

CHUNK = 256  # cells per stored row: ~1 KB of values plus the blocks
MAX_CELLS = 16_000_000  # raster size cap (as in the in-process index: 64 MB of values)
FAR = -1
FORMAT = 3  # bump when the layout of the stored cells changes: older rasters are then rebuilt
_INT4_OID = 23
_LOCK = 0x67726964  # advisory lock key: one rebuild at a time ("grid")


@dataclass(frozen=True)
class RasterInfo:
    """How the stored raster is laid out (the `grid_raster` row)."""

    cells: Cells
    chunk: int
    edge_share: float
    build_seconds: float
    rebuilt: bool  # built by this call

    @property
    def max_abs_lat(self) -> float:
        """The largest |latitude| the raster reaches."""
        c = self.cells
        return max(abs(c.y0), abs(c.y0 - c.nrows * c.dy))

    @property
    def chunks_per_row(self) -> int:
        """Stored chunks along one raster row."""
        return -(-self.cells.ncols // self.chunk)


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
               WHERE r.unit_changes = c.n AND r.tolerance_m = :tolerance AND r.format = :format"""
        ),
        {"tolerance": tolerance_m, "format": FORMAT},
    ).first()
    return None if row is None else RasterInfo(Cells(*row[:6]), *row[6:], rebuilt=False)


def rebuild(
    session: Session, *, tolerance_m: float, progress: Callable[[str], None] | None = None
) -> RasterInfo:
    """Rasterize the current grids and replace the stored raster (in the session's transaction)."""
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    changes = session.execute(text("SELECT n FROM unit_change_count")).scalar_one()
    rows = session.execute(
        text(
            f"""SELECT v.id, v.code, v.kind, ST_AsBinary(v.geom) FROM unit_versions v
               JOIN units u USING (code)
               WHERE u.level = 'grid' AND {valid_at_sql("v", None)} ORDER BY v.code"""
        )
    ).all()
    say(f"rasterizing {len(rows):,} grids ...")
    geometries = from_wkb_array([r[3] for r in rows])
    bounds = shapely.total_bounds(geometries) if rows else np.zeros(4)
    span = degrees_spanning(tolerance_m, max(abs(bounds[1]), abs(bounds[3])) + 1.0)  # 1°: margin
    raster = grid_raster(
        [r.code for r in rows], [r.kind for r in rows], geometries, near=span, max_cells=MAX_CELLS
    )
    cells = raster.cells
    say(f"storing {cells.ncols:,} x {cells.nrows:,} cells ({raster.edge_share:.0%} on edges) ...")
    session.execute(text("TRUNCATE grid_raster, grid_raster_grids, grid_raster_parts, grid_raster_chunks"))
    raw = session.connection().connection.dbapi_connection
    with raw.cursor() as cur:
        with cur.copy("COPY grid_raster_grids (idx, code, version_id) FROM STDIN") as copy:
            for idx, r in enumerate(rows):
                copy.write_row((idx, r.code, r.id))
        with cur.copy("COPY grid_raster_chunks (key, cells) FROM STDIN (FORMAT BINARY)") as copy:
            for block in _copy_blocks(raster):
                copy.write(block)
    session.execute(
        text(
            """INSERT INTO grid_raster_parts (idx, code, geom)
               SELECT g.idx, g.code, p.geom FROM grid_raster_grids g JOIN unit_parts p USING (version_id);
               ANALYZE grid_raster_grids; ANALYZE grid_raster_parts"""
        )
    )
    seconds = time.perf_counter() - started
    info = RasterInfo(cells, CHUNK, raster.edge_share, seconds, rebuilt=True)
    session.execute(
        text(
            """INSERT INTO grid_raster (id, format, unit_changes, tolerance_m, x0, y0, dx, dy, ncols, nrows,
                                        chunk, edge_share, build_seconds)
               VALUES (1, :format, :changes, :tolerance, :x0, :y0, :dx, :dy, :ncols, :nrows, :chunk,
                       :edge_share, :build_seconds)"""
        ),
        {
            "format": FORMAT,
            "changes": changes,
            "tolerance": tolerance_m,
            **asdict(cells),
            "chunk": CHUNK,
            "edge_share": info.edge_share,
            "build_seconds": seconds,
        },
    )
    session.execute(text("ANALYZE grid_raster_chunks"))
    say(f"raster of {len(rows):,} grids built in {seconds:.1f} s")
    return info


def _copy_blocks(raster: GridRaster) -> Iterator[bytes]:
    """The chunks as PostgreSQL binary COPY data: (key int4, cells int4[]) rows."""
    ncols, nrows = raster.cells.ncols, raster.cells.nrows
    per_row = -(-ncols // CHUNK)
    padded = np.full((nrows, per_row * CHUNK), FAR, dtype=np.int32)
    padded[:, :ncols] = np.where(raster.values >= 0, raster.values, FAR).reshape(nrows, ncols)
    cells = padded.reshape(-1, CHUNK)  # chunk k is cells[k]; k = row * per_row + col // CHUNK
    # Cells with a block (edge and near cells), in cell order, so grouped by chunk.
    edge = np.flatnonzero(raster.values <= EDGE)
    number = EDGE - raster.values[edge].astype(np.int64)
    where = np.concatenate([edge, raster.near_cells])
    first = np.concatenate([raster.start[number], raster.near_start[:-1]])
    count = np.concatenate([raster.start[number + 1], raster.near_start[1:]]) - first
    header = np.concatenate([count[: len(edge)], -count[len(edge) :]])  # + edge, - near
    source = np.concatenate([raster.candidates, raster.near_candidates])
    first[len(edge) :] += len(raster.candidates)
    order = np.argsort(where, kind="stable")
    where, first, count, header = where[order], first[order], count[order], header[order]
    at = (where // ncols) * per_row * CHUNK + where % ncols  # index into `padded`
    chunk_of = at // CHUNK
    # Blocks [header, c1, ..., cn] laid end to end; each chunk's run of them follows its values.
    block_end = np.cumsum(count + 1)
    head = block_end - (count + 1)
    blocks = np.empty(int(block_end[-1]) if len(block_end) else 0, dtype=np.int32)
    blocks[head] = header
    which = np.repeat(np.arange(len(count)), count)
    offset = np.arange(len(which)) - np.repeat(np.cumsum(count) - count, count)
    blocks[head[which] + 1 + offset] = source[first[which] + offset]
    bounds = np.concatenate([[0], block_end])
    begin = bounds[np.searchsorted(chunk_of, np.arange(len(cells)))]  # each chunk's blocks
    end = bounds[np.searchsorted(chunk_of, np.arange(len(cells)), side="right")]
    cells.ravel()[at] = -(CHUNK + 1 + head - begin[chunk_of])  # minus the block's 1-based position

    keep = np.flatnonzero((cells != FAR).any(axis=1))
    yield b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
    for k in keep.tolist():
        items = np.concatenate([cells[k], blocks[begin[k] : end[k]]])
        body = np.empty((len(items), 2), dtype=">i4")
        body[:, 0], body[:, 1] = 4, items
        yield struct.pack(">hiiiiiiii", 2, 4, k, 20 + 8 * len(items), 1, 0, _INT4_OID, len(items), 1)
        yield body.tobytes()
    yield struct.pack(">h", -1)
