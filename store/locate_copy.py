"""Building /locate's copy of the grids from the store, in a process of its own.

`load_arrays` reads the current grids, micro-grids and unit names into flat arrays
(geo.flat_grids for the polygons; codes, names and levels as fixed-width and UTF-8 arrays);
`whence` says which database and which state of its grids a copy belongs to: the database's
identity and `unit_change_count` (bumped in the same transaction as every write of unit versions).
A copy is current when both equal what the database says now.

    python -m store.locate_copy PATH   (database URL in GRIDMAP_LOCATE_COPY_URL)

writes the copy to PATH (store.locate_file). Server processes run it as a child (store.locate_cache)
so that the build, which holds the interpreter for seconds at 400,000 grids, never holds theirs.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from geo import flat_grids
from geo.codes import Level
from store import locate_file
from store.geometry import from_wkb_array
from store.units import valid_at_sql

URL_VARIABLE = "GRIDMAP_LOCATE_COPY_URL"  # not a command-line argument: the URL may hold a password
LAYERS = ("grid", "micro")
CHUNK_ROWS = 50_000  # rows read and converted at a time
# The child's scheduling priority, below the server's workers (10 starved it tenfold on a busy machine).
BUILD_NICENESS = 5


class _Unit(NamedTuple):
    code: str
    level: str
    name: str
    kind: str | None
    version: int


_IDENTITY_SQL = """
    SELECT (SELECT n FROM unit_change_count) AS changes, current_database() AS database,
           (SELECT oid::bigint FROM pg_database WHERE datname = current_database()) AS database_oid,
           (SELECT system_identifier::text FROM pg_control_system()) AS system"""


def whence(session: Session) -> dict[str, Any]:
    """Which database (its cluster, name and oid: a database made again is another) and which
    state of its grids (the change count) the session sees."""
    row = session.execute(text(_IDENTITY_SQL)).one()
    return {"system": row.system, "database": row.database, "oid": row.database_oid, "changes": row.changes}


def load_arrays(session: Session) -> dict[str, np.ndarray]:
    """The current grids, micro-grids and every unit's name and level, as flat arrays."""
    result = session.execute(
        text(
            f"""SELECT v.code, u.level, v.name, v.kind, v.version,
                      CASE WHEN u.level IN ('grid', 'micro_grid') THEN ST_AsBinary(v.geom) END AS wkb
               FROM unit_versions v JOIN units u USING (code)
               WHERE {valid_at_sql("v", None)} ORDER BY v.code"""
        ).execution_options(stream_results=True)  # a server-side cursor: the rows come as read
    )
    # Read and converted a chunk at a time: the WKB and the shapely objects of one chunk only are
    # held at once (all of them at once took the builder to 1.3 GB at 400,000 grids).
    rows: list[_Unit] = []
    chunks: dict[str, list[dict[str, np.ndarray]]] = {Level.GRID: [], Level.MICRO_GRID: []}
    for part in result.partitions(CHUNK_ROWS):
        for level, done in chunks.items():
            done.append(flat_grids.ragged(from_wkb_array([r.wkb for r in part if r.level == level])))
        rows += [_Unit(r.code, r.level, r.name, r.kind, r.version) for r in part]
    codes = np.array([r.code for r in rows], dtype="S18")  # sorted (ORDER BY): searchsorted finds a code
    names = [r.name.encode() for r in rows]
    levels = sorted({r.level for r in rows})
    out = {
        "units.codes": codes,
        "units.level": np.array([levels.index(r.level) for r in rows], dtype=np.uint8),
        "units.names": np.frombuffer(b"".join(names), dtype=np.uint8),
        "units.name_at": np.concatenate([[0], np.cumsum([len(n) for n in names])]).astype(np.int64),
        "levels": np.array([x.encode() for x in levels], dtype="S"),
    }
    kinds = sorted({r.kind or "" for r in rows})
    out["kinds"] = np.array([x.encode() for x in kinds], dtype="S")
    for layer, level in zip(LAYERS, (Level.GRID, Level.MICRO_GRID), strict=True):
        which = [i for i, r in enumerate(rows) if r.level == level]
        layer_chunks = chunks.pop(level) or [flat_grids.ragged(np.empty(0, dtype=object))]
        out |= {f"{layer}.{k}": a for k, a in flat_grids.combined(layer_chunks).items()}
        out[f"{layer}.unit"] = np.array(which, dtype=np.int32)
        out[f"{layer}.kind"] = np.array([kinds.index(rows[i].kind or "") for i in which], dtype=np.uint8)
        out[f"{layer}.version"] = np.array([rows[i].version for i in which], dtype=np.int32)
    return out


def build(url: str, path: Path) -> dict[str, Any]:
    """Write the copy of the grids the database holds now to `path`; returns its meta."""
    engine = create_engine(url)
    try:
        # One snapshot of the database for the count and the rows: the count names what was read.
        with Session(engine) as session, session.begin():
            session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
            meta = whence(session)
            arrays = load_arrays(session)
    finally:
        engine.dispose()
    locate_file.write(path, arrays, meta)
    return meta


def main() -> None:
    """The child's entry point: build the copy at argv[1] from the database in URL_VARIABLE."""
    # Below the serving processes: on a machine of few cores the build yields the CPU to answers.
    os.nice(BUILD_NICENESS)
    started = time.perf_counter()
    meta = build(os.environ[URL_VARIABLE], Path(sys.argv[1]))
    print(
        f"locate copy of change {meta['changes']} built in {time.perf_counter() - started:.1f} s", flush=True
    )


if __name__ == "__main__":
    main()
