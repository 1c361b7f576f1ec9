"""Import of a province with every validation, and its re-import unchanged (issue 19 §2).

    .venv/bin/python -m benchmarks.bench_province [--sizes demo,100k,full] [--seed 19]

Sizes: the demo county (Xiangcheng's five unit files as one file, 3,700 units), and the synthetic
province of benchmarks/province.py at 100,000 grids (40 counties) and 400,000 grids (160 counties,
524,000 units with streets, communities, special grids and micro-grids). Each size runs in a child
process of its own (so its peak memory is its own) on a fresh database of the embedded cluster
(or GRIDMAP_BENCH_DATABASE_URL): the file is generated and written (not timed), then timed:

- import: `services.imports.import_units` of the whole file in one transaction (reading, CRS
  conversion, every validation: codes, attributes, parents present, children inside their parents;
  then the rows by COPY, their subdivided parts by a statement trigger, the features' digests),
  committed; then, as `gridmap import` does after the commit, the map's simplified outlines
  (services.tile_precompute) in a transaction of their own: timed apart and in the total;
- re-import of the same file unchanged (every feature read and its digest compared with the
  stored one; nothing converted, checked or written);
- what a user would otherwise run: `GeoDataFrame.to_postgis` of the same file into a plain table,
  with no validation, no history and no lookup parts.

Targets (issue 19): import ≤ 3 min, re-import ≤ 1 min at 400,000 grids. The figures say how they
grow with the size (seconds per 100,000 units) and the load of the machine while they ran; on a
busy machine the CPU seconds (this process's, and its PostgreSQL backend's read from /proc on the
same machine) say more than the wall clock.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from benchmarks.bench_intake import cpu_times, machine_share
from benchmarks.bench_postgis import database, say
from benchmarks.province import SIZES, make_province, write_province
from geo.crs import STORAGE_CRS
from geo.demo import DEMO_DIR, LAYERS
from geo.settings import Settings
from services.imports import import_units, refresh_outlines

WHEN = datetime(2024, 1, 1, tzinfo=UTC)
TARGETS = {"import": 180.0, "reimport": 60.0}


def peak_rss_mb() -> float:
    """This process's peak resident set so far, in MB (GEOS and GDAL allocate outside Python)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def demo_frame() -> gpd.GeoDataFrame:
    """The demo county's unit layers as one frame (storage lon/lat), parents first."""
    frames = [gpd.read_file(DEMO_DIR / name, engine="pyogrio").to_crs(STORAGE_CRS) for name in LAYERS]
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=STORAGE_CRS)


def run_one(size: str, seed: int) -> dict:
    """Generate, write and import one size twice, then load it plainly; the figures as a dict."""
    t0 = time.perf_counter()
    frame = demo_frame() if size == "demo" else make_province(replace(SIZES[size]), seed)
    generated = time.perf_counter() - t0
    settings = Settings(max_import_features=2_000_000)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_province(frame, Path(tmp) / f"{size}.gpkg")
        out = {"size": size, "units": len(frame), "grids": int((frame["code"].str.len() == 15).sum()),
               "generate_s": generated, "file_mb": path.stat().st_size / 1e6}  # fmt: skip
        del frame
        url = database(f"gridmap_bench_province_{size}", settings)
        engine = create_engine(url)
        for step in ("import", "outlines", "reimport"):
            before = cpu_times()
            t0, c0 = time.perf_counter(), time.process_time()
            with Session(engine) as session, session.begin():
                backend = _backend_cpu_s(session)
                if step == "outlines":
                    refresh_outlines(session, say)
                else:
                    result = import_units(
                        session, path, valid_from=WHEN, settings=settings, progress=say, outlines=False
                    )
                    out[f"{step}_written"] = len(result.summary.created) + len(result.summary.versioned)
                backend = _backend_cpu_s(session) - backend
            out[f"{step}_s"] = time.perf_counter() - t0
            out[f"{step}_cpu_s"] = time.process_time() - c0  # this process's own
            out[f"{step}_pg_cpu_s"] = backend  # its PostgreSQL backend's (up to the commit)
            out[f"{step}_machine"] = machine_share(before, cpu_times())
            out[f"{step}_rss_mb"] = peak_rss_mb()
            took, peak, machine = out[f"{step}_s"], out[f"{step}_rss_mb"], out[f"{step}_machine"]
            cpu = out[f"{step}_cpu_s"]
            say(f"  {size} {step}: {took:.1f} s (CPU {cpu:.1f} s + PostgreSQL {backend:.1f} s), "
                f"peak {peak:.0f} MB, {machine}")  # fmt: skip
        t0 = time.perf_counter()
        plain = gpd.read_file(path, engine="pyogrio")
        plain.to_postgis("plain_units", engine, if_exists="replace", chunksize=20_000)
        out["plain_s"] = time.perf_counter() - t0
        with engine.connect() as conn:
            out["db_mb"] = (
                conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one() / 1e6
            )
        engine.dispose()
    return out


def _backend_cpu_s(session: Session) -> float:
    """CPU seconds (user + system) the session's PostgreSQL backend has used so far (same machine)."""
    pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # a server elsewhere (GRIDMAP_BENCH_DATABASE_URL): not known here
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _child(size: str, seed: int) -> dict:
    """Run one size in a child process and read its figures (its peak memory is its own)."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_province", "--one", size, "--seed", str(seed)],
        stdout=subprocess.PIPE, text=True, check=False,  # its progress goes to our stderr as it runs
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{size}: the run failed ({done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(results: list[dict]) -> None:
    """The table, how it grows, and against the targets."""
    print(
        f"\nmachine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (busy; not quiet figures)"
    )
    print(f"{'size':>6} {'units':>9} {'grids':>8} {'import s':>9} {'outlines s':>10} {'total s':>8} "
          f"{'re-import s':>11} {'plain s':>8} {'peak MB':>8} {'db MB':>7}  machine (import)")  # fmt: skip
    for r in results:
        r["total_s"] = r["import_s"] + r["outlines_s"]
        cells = (
            f"{r['size']:>6} {r['units']:>9,} {r['grids']:>8,} {r['import_s']:>9.1f}",
            f"{r['outlines_s']:>10.1f} {r['total_s']:>8.1f} {r['reimport_s']:>11.1f} {r['plain_s']:>8.1f}",
            f"{r['reimport_rss_mb']:>8.0f} {r['db_mb']:>7.0f}  {r['import_machine']}",
        )
        print(" ".join(cells))
    print("\nCPU seconds, the importing process + its PostgreSQL backend:")
    for r in results:
        steps = ", ".join(
            f"{step} {r[f'{step}_cpu_s']:.1f} + {r[f'{step}_pg_cpu_s']:.1f} s"
            for step in ("import", "outlines", "reimport")
        )
        print(f"  {r['size']:>6}: {steps}")
    print("\nper 100,000 units (how it grows):")
    for r in results:
        per = 1e5 / r["units"]
        print(
            f"  {r['size']:>6}: import {r['import_s'] * per:.1f} s (outlines {r['outlines_s'] * per:.1f} s),"
            f" re-import {r['reimport_s'] * per:.1f} s, plain to_postgis {r['plain_s'] * per:.1f} s"
        )
    for r in results:
        if r["size"] == "full":
            for step, target in (("import", TARGETS["import"]), ("total", TARGETS["import"]),
                                 ("reimport", TARGETS["reimport"])):  # fmt: skip
                verdict = "meets" if r[f"{step}_s"] <= target else "MISSES"
                print(
                    f"  400,000 grids {step}: {r[f'{step}_s']:.0f} s {verdict} the target of {target:.0f} s"
                )


def main() -> None:
    """Run the sizes asked for and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="demo,100k,full")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.seed)))
        return
    say(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    results = []
    for size in args.sizes.split(","):
        say(f"{size}: generating, writing, importing twice ...")
        results.append(_child(size, args.seed))
        say(f"  {json.dumps(results[-1])}")
    report(results)


if __name__ == "__main__":
    main()
