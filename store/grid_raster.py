"""The grid raster kept in PostGIS: bulk assignment by arithmetic and hash joins.

A GiST probe costs ~50 µs on this kind of machine, so a join that probes once per point (or once
per grid) cannot be fast. Instead `geo.grid_raster.grid_raster` rasterizes the current grids exactly:
every point of an interior cell has the same answer; an edge cell lists its candidate grids, best
first; a near cell, in no grid, lists the grids that may lie within the snap tolerance of it.

The raster is one row of `grid_raster_cells`, three int arrays stored uncompressed:
  cells    row-major cell values (1-based in SQL: cell (row, col) is cells[1 + row * ncols + col])
  blocks   the blocks of edge and near cells, end to end (identical blocks stored once)
  grids    grid number -> grid code, as an integer (codes are digits; see `code_sql`)
A statement reads an array through a scalar subquery, which PostgreSQL evaluates once: every
point's cell is then an offset into memory, with no join and no per-row detoasting.

Cell values (int4):
  v >= 0       grid number v wins everywhere in the cell
  FAR (-1)     no grid, and none within the snap tolerance of any point of the cell
  v <= -2      the cell's block starts at blocks[-v]: a header h, then |h| grid numbers;
               h > 0: an edge cell, candidates best first; h < 0: a near cell, grids to measure

The raster reaches the tolerance beyond the grids, so a point outside it is far from every grid.

The raster describes the grids of one moment: `grid_raster.unit_changes` is the value of the
`unit_change_count` row (bumped by every statement that writes unit versions) it was built from,
and `current_raster` rebuilds it when that moved on or the tolerance differs.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo.codes import CODE_LENGTH, Level
from geo.crs import degrees_spanning
from geo.grid_raster import EDGE, Cells, GridRaster, grid_raster
from store.geometry import from_wkb_array
from store.units import valid_at_sql

MAX_CELLS = 16_000_000  # raster size cap (as in the in-process index: 64 MB of values)
FAR = -1
FORMAT = 4  # bump when the layout of the stored cells changes: older rasters are then rebuilt
_INT4_OID, _INT8_OID = 23, 20
_LOCK = 0x67726964  # advisory lock key: one rebuild at a time ("grid")


@dataclass(frozen=True)
class RasterInfo:
    """How the stored raster is laid out (the `grid_raster` row)."""

    cells: Cells
    edge_share: float
    build_seconds: float
    rebuilt: bool  # built by this call

    @property
    def max_abs_lat(self) -> float:
        """The largest |latitude| the raster reaches."""
        c = self.cells
        return max(abs(c.y0), abs(c.y0 - c.nrows * c.dy))


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
            """SELECT r.x0, r.y0, r.dx, r.dy, r.ncols, r.nrows, r.edge_share, r.build_seconds
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
    session.execute(text("TRUNCATE grid_raster, grid_raster_grids, grid_raster_parts, grid_raster_cells"))
    values, blocks = cell_blocks(raster)
    numbers = np.array([int(r.code) for r in rows], dtype=np.int64)
    raw = session.connection().connection.dbapi_connection
    with raw.cursor() as cur:
        with cur.copy("COPY grid_raster_grids (idx, code, version_id) FROM STDIN") as copy:
            for idx, r in enumerate(rows):
                copy.write_row((idx, r.code, r.id))
        with cur.copy("COPY grid_raster_cells (id, cells, blocks, grids) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(_binary_row(values, blocks, numbers))
    # The pieces with their geography ready: snapping measures on the spheroid, and a cast per
    # pair would cost as much as the distance.
    session.execute(
        text(
            """INSERT INTO grid_raster_parts (idx, code, geom, geog)
               SELECT g.idx, g.code, p.geom, p.geom::geography
               FROM grid_raster_grids g JOIN unit_parts p USING (version_id);
               ANALYZE grid_raster_grids; ANALYZE grid_raster_parts"""
        )
    )
    seconds = time.perf_counter() - started
    info = RasterInfo(cells, raster.edge_share, seconds, rebuilt=True)
    session.execute(
        text(
            """INSERT INTO grid_raster (id, format, unit_changes, tolerance_m, x0, y0, dx, dy, ncols, nrows,
                                        edge_share, build_seconds)
               VALUES (1, :format, :changes, :tolerance, :x0, :y0, :dx, :dy, :ncols, :nrows,
                       :edge_share, :build_seconds)"""
        ),
        {
            "format": FORMAT,
            "changes": changes,
            "tolerance": tolerance_m,
            **asdict(cells),
            "edge_share": info.edge_share,
            "build_seconds": seconds,
        },
    )
    say(f"raster of {len(rows):,} grids built in {seconds:.1f} s")
    return info


def code_sql(number: str) -> str:
    """SQL for the grid code of a `grids` array element (grid codes are digits of a fixed length)."""
    return f"lpad(({number})::text, {CODE_LENGTH[Level.GRID]}, '0')"


def cell_blocks(raster: GridRaster) -> tuple[np.ndarray, np.ndarray]:
    """The stored cell values (edge and near cells pointing at their blocks) and the blocks."""
    values = np.where(raster.values >= 0, raster.values, FAR).astype(np.int32)
    edge = np.flatnonzero(raster.values <= EDGE)
    number = EDGE - raster.values[edge].astype(np.int64)
    where = np.concatenate([edge, raster.near_cells])
    first = np.concatenate([raster.start[number], raster.near_start[:-1] + len(raster.candidates)])
    count = np.concatenate([raster.start[number + 1] - raster.start[number], np.diff(raster.near_start)])
    header = np.concatenate([count[: len(edge)], -count[len(edge) :]])  # + edge, - near
    source = np.concatenate([raster.candidates, raster.near_candidates])
    # Blocks [h, c1, ..., cn], each distinct one once (a boundary's cells share their lists).
    # blocks[1] is padding: a block at 1 would read as FAR.
    pointer = np.empty(len(where), dtype=np.int64)
    parts, at = [np.zeros(1, dtype=np.int64)], 2
    for n in np.unique(count).tolist():
        which = np.flatnonzero(count == n)
        block = np.column_stack([header[which], source[first[which, None] + np.arange(n)]])
        distinct, inverse = _distinct_rows(block)
        pointer[which] = at + inverse * (n + 1)
        parts.append(distinct.reshape(-1))
        at += distinct.size
    if at > np.iinfo(np.int32).max:
        raise ValueError(f"{at:,} block entries do not fit the raster's int4 cells")
    values[where] = -pointer
    return values, np.concatenate(parts).astype(np.int32)


def _distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a 2-D int array, and for each row the index of its distinct row."""
    # A hash per row, then a 1-D unique: np.unique(axis=0) sorts whole rows and is ten times slower.
    key = np.zeros(len(rows), dtype=np.uint64)
    for column in rows.T.astype(np.uint64):  # arithmetic wraps around: it is a hash
        key = key * np.uint64(0x100000001B3) + column
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    if not np.array_equal(rows[first][inverse], rows):  # two rows share a hash: keep them all
        return rows, np.arange(len(rows))
    return rows[first], inverse


def _binary_row(cells: np.ndarray, blocks: np.ndarray, grids: np.ndarray) -> bytes:
    """The grid_raster_cells row (1, cells, blocks, grids) as PostgreSQL binary COPY data.

    Written from the arrays' bytes: psycopg's `write_row` dumps a list element by element, which
    took 11.2 s for 10 million cells where this takes 2.6 s (most of it PostgreSQL's).
    """
    fields = [struct.pack(">ii", 4, 1)]
    for items, oid, size in ((cells, _INT4_OID, 4), (blocks, _INT4_OID, 4), (grids, _INT8_OID, 8)):
        body = np.empty(len(items), dtype=[("size", ">i4"), ("value", f">i{size}")])
        body["size"], body["value"] = size, items
        # Array header: one dimension, no nulls, element type, length, lower bound 1.
        fields.append(struct.pack(">iiiiii", 20 + body.nbytes, 1, 0, oid, len(items), 1) + body.tobytes())
    return b"PGCOPY\n\xff\r\n\x00" + struct.pack(">iih", 0, 0, 4) + b"".join(fields) + struct.pack(">h", -1)
