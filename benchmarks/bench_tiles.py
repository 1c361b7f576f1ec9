"""Vector tiles at every zoom, simplified per zoom band against plain ST_AsMVT as before (issue 19 §2).

    .venv/bin/python -m benchmarks.bench_tiles [--sizes demo,100k,full] [--reuse] [--sample 30]

Per dataset (the demo county, the synthetic province of benchmarks/province.py at 100,000 and
400,000 grids, imported with `services.imports.import_units`, which makes the simplified outlines):
- the precomputation: every simplified outline made again from scratch, and again for one county
  only (what a publish in one county costs: finding what is stale, and that county);
- per zoom from the province's zoom down to z18: a deterministic sample of the tiles over the data
  (every tile when there are fewer), each generated in-process twice, in the same run:
  `plain`, the stored outlines with the level rules of before (every level at every zoom, grids
  left out above 6,000 per tile: the code path before issue 19), and `new`, the service's path now
  (simplified outlines up to z12, only the levels readable at the zoom); p50/p95/max time and the
  gzipped size (median, max) of each.
Times are the SQL the tile endpoint runs, without the HTTP layer (a few ms) and without the cache
(a cached tile costs a dictionary lookup). The machine's load and steal are printed: on a shared
machine these are not quiet-machine figures.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import statistics
import tempfile
import time
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from benchmarks.bench_intake import cpu_times, machine_share
from benchmarks.bench_map import tiles_over
from benchmarks.bench_postgis import database, reused, say
from benchmarks.province import SIZES, make_province, write_province
from geo import zoom_bands
from geo.codes import Level
from geo.settings import Settings
from services import tile_precompute
from services.imports import import_units, load_demo
from store import tiles

EVERYTHING = {level: tiles.TileFilter() for level in Level}
WHEN = datetime(2024, 1, 1, tzinfo=UTC)


@contextmanager
def rules_of_before():
    """The level rules before issue 19: every level at every zoom but micro-grids (z14), and only
    grids and micro-grids left out of a tile over 6,000 of them."""
    before = {level: (14 if level == Level.MICRO_GRID else 0) for level in Level}
    with (
        mock.patch.dict(zoom_bands.MIN_ZOOM, before),
        mock.patch.object(zoom_bands, "BUDGETED", (Level.GRID, Level.MICRO_GRID)),
        mock.patch.object(tiles, "FEATURE_BUDGET", 6000),
    ):
        yield


def load(size: str, settings: Settings, reuse: bool) -> str:
    """The database of one dataset, imported (and simplified) unless reused."""
    name = f"gridmap_bench_tiles_{size}"
    url = reused(name, settings) if reuse else None
    if url is not None:
        return url
    url = database(name, settings)
    engine = create_engine(url)
    t0 = time.perf_counter()
    with Session(engine) as session, session.begin():
        if size == "demo":
            load_demo(session, settings, progress=say)
        else:
            frame = make_province(replace(SIZES[size]), 19)
            with tempfile.TemporaryDirectory() as tmp:
                path = write_province(frame, Path(tmp) / f"{size}.gpkg")
                del frame
                import_units(session, path, valid_from=WHEN, settings=settings)
    say(f"  {size}: loaded and simplified in {time.perf_counter() - t0:.0f} s")
    engine.dispose()
    return url


def precompute(url: str, county_only: bool = False) -> dict:
    """Seconds to make every simplified outline again, and one county's only (then rolled back)."""
    engine = create_engine(url)
    out = {}
    with Session(engine) as session:
        # "One county": its streets, communities and grids, as after a publish of a redraw in it.
        first = "(SELECT min(left(code, 6)) FROM unit_simplified WHERE length(code) > 6)"
        one = f"length(code) > 6 AND left(code, 6) = {first}"
        for name, where in ((("all", "TRUE"),) if not county_only else ()) + (("one county", one),):
            with session.begin():
                session.execute(text(f"DELETE FROM unit_simplified WHERE {where}"))
                session.execute(text("UPDATE unit_simplified_state SET generation = -1"))
                before = cpu_times()
                done = tile_precompute.refresh(session)
                out[name] = (done, machine_share(before, cpu_times()))
                session.rollback()
    engine.dispose()
    return out


def extent(url: str) -> tuple[float, float, float, float]:
    """The data's extent (lon/lat)."""
    with create_engine(url).connect() as conn:
        sql = """SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
                 FROM (SELECT ST_Extent(geom) AS e FROM unit_versions WHERE valid_to IS NULL) s"""
        row = conn.execute(text(sql)).one()
    return tuple(float(v) for v in row)  # type: ignore[return-value]


def sample(bounds: tuple[float, float, float, float], z: int, n: int) -> list[tuple[int, int, int]]:
    """Up to `n` tiles of zoom `z` over the data, picked deterministically."""
    todo = tiles_over(bounds, z)
    return todo if len(todo) <= n else random.Random(z).sample(todo, n)


def timed(session: Session, todo: list[tuple[int, int, int]], simplified: bool) -> dict:
    """p50/p95/max ms and gzip KB (median, max) of generating `todo`."""
    times, packed, grids, omitted = [], [], 0, 0
    for t in todo:
        started = time.perf_counter()
        tile = tiles.view_tile(session, *t, EVERYTHING, simplified=simplified)
        times.append((time.perf_counter() - started) * 1000)
        packed.append(len(gzip.compress(tile.data, 6)) / 1024)
        grids = max(grids, tile.features.get("grid", 0))
        omitted += bool(tile.omitted)
    times.sort()
    return {
        "p50": statistics.median(times), "p95": times[max(0, round(0.95 * len(times)) - 1)],
        "max": times[-1], "gz50": statistics.median(packed), "gzmax": max(packed),
        "grids": grids, "omitted": omitted,
    }  # fmt: skip


def bench(url: str, zooms: range, n: int) -> list[dict]:
    """Per zoom: the sample, timed on both paths."""
    bounds = extent(url)
    engine = create_engine(url)
    rows = []
    with Session(engine) as session:
        tiles.view_tile(session, *sample(bounds, zooms[0], 1)[0], EVERYTHING)  # connection warm-up
        for z in zooms:
            todo = sample(bounds, z, n)
            before = cpu_times()
            with rules_of_before():
                plain = timed(session, todo, simplified=False)
            new = timed(session, todo, simplified=True)
            rows.append({"z": z, "tiles": len(todo), "plain": plain, "new": new,
                         "machine": machine_share(before, cpu_times())})  # fmt: skip
            say(f"    z{z}: plain p95 {plain['p95']:.0f} ms, new p95 {new['p95']:.0f} ms")
    engine.dispose()
    return rows


def report(size: str, pre: dict, rows: list[dict]) -> None:
    """Print one dataset's tables."""
    print(f"\n== {size} ==  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    for name, (done, machine) in pre.items():
        print(f"precompute {name}: {done.seconds:.1f} s, {done.rows:,} rows "
              f"({done.top} outlines above the county, {done.counties} counties); {machine}")  # fmt: skip
    head = f"{'gz KB med/max':>14} {'grids':>6}"
    print(f"{'z':>3} {'tiles':>5} | {'plain p50/p95/max ms':>22} {head} |"
          f" {'new p50/p95/max ms':>20} {head} {'omit':>4} | machine")  # fmt: skip
    for r in rows:
        p, q = r["plain"], r["new"]
        print(f"{r['z']:>3} {r['tiles']:>5} | {p['p50']:>7.1f}/{p['p95']:>6.1f}/{p['max']:>7.1f} "
              f"{p['gz50']:>6.1f}/{p['gzmax']:>6.1f} {p['grids']:>6} | {q['p50']:>6.1f}/{q['p95']:>6.1f}/"
              f"{q['max']:>6.1f} {q['gz50']:>6.1f}/{q['gzmax']:>6.1f} {q['grids']:>6} {q['omitted']:>4} | "
              f"{r['machine']}")  # fmt: skip


def main() -> None:
    """Load (or reuse) each dataset, time the precomputation and the tiles, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="demo,100k,full")
    parser.add_argument("--reuse", action="store_true", help="reuse databases loaded by an earlier run")
    parser.add_argument("--sample", type=int, default=30, help="tiles per zoom at most")
    parser.add_argument("--zooms", default="5-18")
    parser.add_argument("--no-precompute", action="store_true", help="time the tiles only")
    parser.add_argument("--county-only", action="store_true", help="time one county's precompute only")
    args = parser.parse_args()
    settings = Settings(database_url=None, max_import_features=2_000_000)
    first, last = (int(v) for v in args.zooms.split("-"))
    for size in args.sizes.split(","):
        say(f"{size} ...")
        url = load(size, settings, args.reuse)
        pre = {} if args.no_precompute else precompute(url, args.county_only)
        rows = bench(url, range(first, last + 1), args.sample)
        report(size, pre, rows)


if __name__ == "__main__":
    main()
