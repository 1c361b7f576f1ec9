"""`gridmap assign` end to end against the pandas + geopandas.sjoin script a user would write.

    .venv/bin/python -m benchmarks.bench_assign_csv [--points 1000000 ...] [--grids 0 100000] [--reuse]

Both read the same CSV of id,lon,lat (WGS84) and write id,...,grid_code; both are run as the user
runs them, in a fresh process, timed from start to exit (imports, reading, the join, writing):
  1. `gridmap assign points.csv --crs wgs84 -o ours.csv` on a database holding the grids;
  2. a script: read the grids exported by `gridmap export` (not timed: a user would have the
     file), pandas.read_csv, GeoDataFrame(points_from_xy), geopandas.sjoin(predicate="within"),
     one row per point, to_csv.
Answers are compared: wherever sjoin finds exactly one grid, gridmap must give that grid
(points on an edge or under a special grid are where the two rules may differ; counted).
Peak memory is each child's own peak resident set (VmHWM, which the child reads at its exit:
see PEAK); a check before the runs shows it on a child touching a known amount.
Prints progress on stderr and a table on stdout; nothing here is a test.
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from benchmarks.bench_lookup import demo_data
from benchmarks.bench_postgis import database, load_partition, reused, say
from benchmarks.partition import make_partition, make_points
from geo.settings import Settings
from services.imports import load_demo

DEMO = 0

USER_SCRIPT = textwrap.dedent(
    """
    import sys
    import geopandas as gpd
    import pandas as pd

    grids_file, points_file, out_file = sys.argv[1:4]
    grids = gpd.read_file(grids_file)[["code", "geometry"]]
    points = pd.read_csv(points_file, dtype={"id": str})
    frame = gpd.GeoDataFrame(points, geometry=gpd.points_from_xy(points.lon, points.lat), crs=grids.crs)
    joined = gpd.sjoin(frame, grids, how="left", predicate="within")
    joined = joined[~joined.index.duplicated(keep="first")]
    out = pd.DataFrame({"id": joined["id"], "grid_code": joined["code"].fillna("")})
    out.to_csv(out_file, index=False)
    """
)


# Each child's peak memory is read by the child itself. getrusage's ru_maxrss of a waited child
# is no use here: Linux carries the resident high-water mark over fork and execve, so every child
# of this process (which holds the partition and the points, 1.5 GB at 400,000 grids) reported at
# least this process's size (the 1 M rows of 2026-12-05 showed 1,521 / 1,521 MB). VmHWM in
# /proc/self/status is the high-water mark of the program's own memory, which execve starts anew.
PEAK = textwrap.dedent(
    """
    import atexit, os, runpy, sys

    def peak():
        with open("/proc/self/status") as status:
            kb = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
        with open(os.environ["BENCH_PEAK_FILE"], "w") as out:
            out.write(kb)

    atexit.register(peak)
    if sys.argv[1] == "-m":
        sys.argv = sys.argv[2:]
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    else:
        sys.argv = sys.argv[1:]
        runpy.run_path(sys.argv[0], run_name="__main__")
    """
)

# A child that touches a known amount: checks the figure, started from this (large) process.
KNOWN_MB = 300
TOUCH = f"import numpy as np; np.ones({KNOWN_MB} << 17)"  # KNOWN_MB MB of float64, every page written


def run_child(args: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, own peak resident MB and CPU seconds of one Python child (which must succeed).

    `args` are the interpreter's arguments after the executable: ["-m", module, ...] or
    [script, ...]; the child runs them under PEAK, which adds no work but reading one file at exit.
    """
    with tempfile.NamedTemporaryFile(suffix=".peak") as peak:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-c", PEAK, *args],
            env={**env, "BENCH_PEAK_FILE": peak.name},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        stderr = process.stderr.read().decode() if process.stderr else ""
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{args[:3]} failed:\n{stderr}")
        peak_mb = int(Path(peak.name).read_text()) / 1024
    return seconds, peak_mb, usage.ru_utime + usage.ru_stime


def compile_project() -> None:
    """Byte-compile the project's modules, as pip does when it installs the package.

    The script's libraries are installed, compiled; this work tree is an editable install, and
    under PYTHONDONTWRITEBYTECODE=1 (set on the project's machines) every run of the command would
    compile its ~45 modules from source first, ~0.1-0.3 s that no installed `gridmap` pays.
    """
    root = Path(__file__).resolve().parent.parent
    for package in ("errors.py", "geo", "cases", "access", "store", "services", "api", "maps", "cli"):
        path = root / package
        compile_ = compileall.compile_file if path.is_file() else compileall.compile_dir
        if not compile_(path, quiet=1):
            raise SystemExit(f"{path} does not compile")


def check_peak(env: dict[str, str]) -> str:
    """A line saying what the peak figure gives for a child touching KNOWN_MB, beside getrusage's."""
    with tempfile.TemporaryDirectory() as work:
        script = Path(work) / "touch.py"
        script.write_text(TOUCH)
        _, peak_mb, _ = run_child([str(script)], env)
        bare = subprocess.Popen([sys.executable, str(script)])
        _, _, usage = os.wait4(bare.pid, 0)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return (
        f"memory check: a child touching {KNOWN_MB} MB: own peak {peak_mb:,.0f} MB "
        f"(getrusage of the child: {usage.ru_maxrss / 1024:,.0f} MB; this process's peak: {own:,.0f} MB)"
    )


def prepare(n_grids: int, reuse: bool, settings: Settings) -> str:
    """The URL of a database holding the grids (the demo county or a synthetic partition)."""
    name = "gridmap_bench_demo" if n_grids == DEMO else f"gridmap_bench_partition_{n_grids}"
    url = reused(name, settings) if reuse else None
    if url is None:
        url = database(name, settings)
        if n_grids == DEMO:
            with Session(create_engine(url)) as session, session.begin():
                load_demo(session, settings=settings)
        else:
            load_partition(url, n_grids)
    return url


def points_for(n_grids: int, n_points: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The run's points: 98 % inside the demo county, or uniform over the partition's box."""
    if n_grids == DEMO:
        _, lon, lat = demo_data(n_points, seed)
        return lon, lat
    grids = make_partition(n_grids, seed=7, removed_share=0.01, special_share=0.01)
    return make_points(n_points, grids, seed)


def compare(ours: Path, theirs: Path) -> tuple[int, int]:
    """(points where sjoin found one grid and gridmap agrees, points where they differ)."""
    a = pd.read_csv(ours, dtype=str, keep_default_na=False)
    b = pd.read_csv(theirs, dtype=str, keep_default_na=False)
    found = (b["grid_code"] != "").to_numpy()
    same = (a["grid_code"].to_numpy() == b["grid_code"].to_numpy()) & found
    return int(same.sum()), int((found & ~same).sum())


def bench(url: str, n_grids: int, n_points: int, repeat: int, work: Path) -> dict:
    """One row of the table."""
    env = {**os.environ, "GRIDMAP_DATABASE_URL": url}
    gridmap = ["-m", "cli.main"]
    grids_file = work / "grids.geojson"
    export = [sys.executable, *gridmap, "export", str(grids_file)]
    subprocess.run(export, env=env, check=True, capture_output=True)
    lon, lat = points_for(n_grids, n_points, seed=11)
    points = work / "points.csv"
    say(f"  writing {n_points:,} points ...")
    pd.DataFrame({"id": np.arange(n_points).astype(str), "lon": lon, "lat": lat}).to_csv(points, index=False)
    ours, theirs = work / "ours.csv", work / "theirs.csv"
    script = work / "user_script.py"
    script.write_text(USER_SCRIPT)
    row: dict = {"grids": "demo county" if n_grids == DEMO else f"{n_grids:,}", "points": n_points}
    best: dict[str, tuple[float, float, float]] = {}
    # The first run builds the grid index and saves it (services.grid_index); the runs after it
    # load it, as every run does until the grids change. Both are reported.
    say("  first run: ours (builds and saves the grid index) ...")
    row["first_s"], row["first_mb"], row["first_cpu"] = run_child(
        [*gridmap, "assign", str(points), "--crs", "wgs84", "-o", str(ours)], env
    )
    for attempt in range(repeat):
        for name, args in (
            ("ours", [*gridmap, "assign", str(points), "--crs", "wgs84", "-o", str(ours)]),
            ("script", [str(script), str(grids_file), str(points), str(theirs)]),
        ):
            say(f"  run {attempt + 1}/{repeat}: {name} ...")
            seconds, mb, cpu = run_child(args, env)
            if name not in best or seconds < best[name][0]:
                best[name] = (seconds, mb, cpu)
    row["ours_s"], row["ours_mb"], row["ours_cpu"] = best["ours"]
    row["script_s"], row["script_mb"], row["script_cpu"] = best["script"]
    row["load"] = os.getloadavg()[0]
    row["check"] = check_peak(env)
    row["agree"], row["differ"] = compare(ours, theirs)
    return row


def main() -> None:
    """Parse arguments, run, print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--grids", type=int, nargs="+", default=[DEMO], help="0 = the demo county")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--reuse", action="store_true", help="reuse databases loaded by an earlier run")
    args = parser.parse_args()
    settings = Settings(database_url=None)
    compile_project()
    load = os.getloadavg()
    rows = []
    for n_grids in args.grids:
        say(f"grids: {'demo county' if n_grids == DEMO else n_grids} ...")
        url = prepare(n_grids, args.reuse, settings)
        for n_points in args.points:
            with tempfile.TemporaryDirectory() as work:
                rows.append(bench(url, n_grids, n_points, args.repeat, Path(work)))
    print(f"load average before the runs: {load[0]:.1f} (2 cores); best of {args.repeat} runs each")
    for line in dict.fromkeys(r["check"] for r in rows):
        print(line)
    print(
        "| grids | points | gridmap assign (first run: index built) | gridmap assign | pandas + sjoin script "
        "| ratio (wall) | CPU ours / script (ratio) | peak memory (ours / script) | same grid / differ "
        "| load after |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['grids']} | {r['points']:,} | {r['first_s']:.1f} s | {r['ours_s']:.1f} s "
            f"| {r['script_s']:.1f} s "
            f"| **{r['script_s'] / r['ours_s']:.1f}×** | {r['ours_cpu']:.1f} / {r['script_cpu']:.1f} s "
            f"({r['script_cpu'] / r['ours_cpu']:.1f}×) | {r['ours_mb']:,.0f} / {r['script_mb']:,.0f} MB "
            f"| {r['agree']:,} / {r['differ']:,} | {r['load']:.1f} |"
        )


if __name__ == "__main__":
    main()
