"""/locate as the grids grow: the shared copy's build time and memory, latency, and a rebuild under load.

    .venv/bin/python -m benchmarks.bench_locate_scale [--grids 100000,400000] [--requests 3000] [--reuse]

For the demo county and synthetic partitions (benchmarks.partition, loaded as bench_postgis does):
  1. the copy of the grids (store.locate_copy) built into its file in a fresh process, as a server
     has it built: seconds, the file's size and the builder's peak memory (a passing cost: the
     builder is a child process that ends);
  2. a `uvicorn` server of WORKERS worker processes with a state folder of its own (it builds the
     copy at start and both workers map it): each process's resident memory (RSS) and its
     proportional share (PSS, /proc/PID/smaps_rollup: a page mapped by two processes counts half
     in each, where RSS counts it in both), the copy file's PSS in each worker, and the total PSS
     of the server (what the machine gives it);
  3. /locate p50/p99 at the server (Server-Timing) and at the client from the copy, against the
     same points asked of PostGIS (`at=` now: what /locate did before the copy, and what a user
     would otherwise run: a point-in-polygon query per point);
  4. a change of the grids (an UPDATE of unit_versions touching no row: the trigger bumps the
     change count and sends NOTIFY unit_changes, as a publish does) while a client keeps asking:
     the workers drop their copy at once and answer from PostGIS, a child process builds the new
     file, the workers map it; the p99 and worst latency meanwhile, whether any answer failed (a
     pause would show as a gap in answering or as errors), and how long until the new file was in place.
Issue 19's targets: p99 ≤ 5 ms at the server at 400,000 grids, the copy ≤ 1 GB per machine, built
in ≤ 30 s, rebuilt without a pause in answering.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import shapely
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from benchmarks.bench_intake import cpu_times, machine_share
from benchmarks.bench_postgis import ROOT, database, free_port, load_partition, reused, say, wait_until_up
from geo.settings import Settings
from services.imports import load_demo
from store import locate_copy
from store.units import valid_at_sql

WORKERS = 2


def build_figures(url: str) -> dict[str, float]:
    """Build the copy's file as a server has it built (`python -m store.locate_copy`, a fresh
    process): seconds, the builder's peak MB, the file's MB, grids."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "grids.locate"
        t0 = time.perf_counter()
        env = {**os.environ, locate_copy.URL_VARIABLE: url}
        command = [sys.executable, "-m", "store.locate_copy", str(path)]
        subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        figures = {"seconds": time.perf_counter() - t0, "file_mb": path.stat().st_size / 2**20}
    # The largest resident size of the children waited for: this one (the first run's, so far).
    figures["peak_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    with create_engine(url).connect() as conn:
        figures["grids"] = conn.execute(
            text(f"SELECT count(*) FROM unit_versions v JOIN units u USING (code) "
                 f"WHERE u.level = 'grid' AND {valid_at_sql('v', None)}")
        ).scalar_one()  # fmt: skip
    return figures


def serve(url: str, home: str) -> tuple[subprocess.Popen, str]:
    """A uvicorn server of WORKERS processes on `url`, state folder `home` (it builds its copy at start)."""
    port = free_port()
    env = {
        **os.environ,
        "GRIDMAP_DATABASE_URL": url,
        "GRIDMAP_DEMO": "1",
        "GRIDMAP_BACKGROUND_JOBS": "false",
        "GRIDMAP_HOME": home,
    }
    command = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--port", str(port)]
    command += ["--workers", str(WORKERS), "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    wait_until_up(base, server)
    return server, base


def server_pids(server: subprocess.Popen) -> list[int]:
    """The server's processes: uvicorn's supervisor and its children."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    return [server.pid, *map(int, children)]


def memory_mb(pid: int, copy: Path) -> dict[str, float]:
    """A process's RSS and PSS, and the PSS of its mappings of the copy's file (MB)."""
    rollup = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        rollup[key] = int(value.split()[0]) / 1024
    in_copy, current = 0.0, False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if "-" in line.split(" ", 1)[0] and not line.startswith(("Pss", "Rss")):
            current = line.rstrip().endswith(str(copy))
        elif current and line.startswith("Pss:"):
            in_copy += int(line.split()[1]) / 1024
    worker = b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()  # not the supervisor
    return {"rss": rollup["Rss"], "pss": rollup["Pss"], "copy_pss": in_copy, "worker": worker}


def settled(server: subprocess.Popen, folder: Path, timeout_s: float) -> Path:
    """Wait until the copy's file exists and every worker maps it; returns its path."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        files = list(folder.glob("*.locate"))
        workers = [p for p in server_pids(server) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
        if files and len(workers) == WORKERS:
            maps = [Path(f"/proc/{pid}/maps").read_text() for pid in workers]
            if sum(str(files[0]) in m for m in maps) == WORKERS:
                return files[0]
        time.sleep(0.2)
    raise RuntimeError("the workers did not map the copy in time")


def latencies(client: httpx.Client, lon: np.ndarray, lat: np.ndarray, at: str | None) -> dict[str, float]:
    """p50/p99 of /locate at the server and the client over the points (the first 100 warm up)."""
    server_ms, client_ms = [], []
    for i in range(len(lon)):
        params = {"lon": lon[i], "lat": lat[i], **({"at": at} if at else {})}
        t0 = time.perf_counter()
        response = client.get("/locate", params=params)
        took = (time.perf_counter() - t0) * 1000
        response.raise_for_status()
        if i >= 100:
            client_ms.append(took)
            server_ms.append(float(response.headers["server-timing"].split("=")[1]))
    return {
        "server_p50": float(np.percentile(server_ms, 50)),
        "server_p99": float(np.percentile(server_ms, 99)),
        "client_p50": float(np.percentile(client_ms, 50)),
        "client_p99": float(np.percentile(client_ms, 99)),
    }


def during_rebuild(
    url: str,
    client: httpx.Client,
    lon: np.ndarray,
    lat: np.ndarray,
    window_s: float,
    copy: Path,
    change: bool,
) -> dict:
    """Ask /locate back to back while the grids change (if `change`; else the same window with no
    change, to compare): p99, worst, failures, longest gap, and seconds from the change until the
    new copy's file was in place."""
    times, failures, gaps = [], 0, []
    stop = time.monotonic() + window_s
    changed_at = []

    def changed() -> None:  # the trigger counts and notifies for every statement, even of no row
        with create_engine(url, isolation_level="AUTOCOMMIT").connect() as conn:
            if change:
                conn.execute(text("UPDATE unit_versions SET name = name WHERE false"))
        changed_at.append(time.time())

    notified = threading.Timer(1.0, changed)
    notified.start()
    last = time.perf_counter()
    i = 0
    while time.monotonic() < stop:
        t0 = time.perf_counter()
        try:
            ok = client.get("/locate", params={"lon": lon[i % len(lon)], "lat": lat[i % len(lat)]}).is_success
        except httpx.HTTPError:
            ok = False
        now = time.perf_counter()
        failures += not ok
        times.append((now - t0) * 1000)
        gaps.append((now - last) * 1000)
        last, i = now, i + 1
    notified.join()
    return {
        "swapped_s": copy.stat().st_mtime - changed_at[0] if change else float("nan"),
        "requests": len(times),
        "p99": float(np.percentile(times, 99)),
        "max": max(times),
        "failures": failures,
        "gap": max(gaps),
    }


def measure(name: str, url: str, bounds: tuple[float, float, float, float], requests: int) -> dict:
    """Every figure for one dataset."""
    say(f"{name}: building the copy's file in a fresh process ...")
    built = build_figures(url)
    rng = np.random.default_rng(11)
    lon = rng.uniform(bounds[0], bounds[2], requests + 100)
    lat = rng.uniform(bounds[1], bounds[3], requests + 100)
    with tempfile.TemporaryDirectory() as home:
        server, base = serve(url, home)
        try:
            copy = settled(server, Path(home) / "locate", built["seconds"] * 4 + 60)
            time.sleep(2)
            memory = {pid: memory_mb(pid, copy) for pid in server_pids(server)}
            with httpx.Client(base_url=base, timeout=30) as client:
                say(f"{name}: /locate from the copy and from PostGIS, {requests} points each ...")
                before = cpu_times()
                answers = latencies(client, lon, lat, None)
                postgis = latencies(client, lon, lat, datetime.now(UTC).isoformat())
                say(f"{name}: a change of the grids while asking ...")
                window = built["seconds"] * 3 + 6
                steady = during_rebuild(url, client, lon, lat, window, copy, change=False)
                rebuild = during_rebuild(url, client, lon, lat, window, copy, change=True)
                machine = machine_share(before, cpu_times())
        finally:
            server.terminate()
            server.wait(20)
    return {
        "name": name, "built": built, "processes": memory, "answers": answers, "postgis": postgis,
        "steady": steady, "rebuild": rebuild, "machine": machine,
    }  # fmt: skip


def main() -> None:
    """Measure the demo county and each partition size; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", default="100000,400000", help="partition sizes, comma-separated")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--reuse", action="store_true", help="reuse databases an earlier run loaded")
    args = parser.parse_args()
    settings = Settings(database_url=None)
    say(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    rows = []
    url = reused("gridmap_bench_demo", settings) if args.reuse else None
    if url is None:
        url = database("gridmap_bench_demo", settings)
        with Session(create_engine(url)) as session, session.begin():
            load_demo(session, settings, progress=say)
    with Session(create_engine(url)) as session:
        county = session.execute(text("SELECT ST_AsBinary(geom) FROM unit_versions WHERE code = '411681'"))
        bounds = shapely.from_wkb(bytes(county.scalar_one())).bounds
    rows.append(measure("demo county", url, bounds, args.requests))
    for n in (int(x) for x in args.grids.split(",") if x):
        name = f"gridmap_bench_locate_{n}"
        url = reused(name, settings) if args.reuse else None
        if url is None:
            say(f"{n:,} grids: generating and loading ...")
            t0 = time.perf_counter()
            url = database(name, settings)
            area = load_partition(url, n)
            say(f"  loaded in {time.perf_counter() - t0:.0f} s")
        with Session(create_engine(url)) as session:
            extent = session.execute(
                text("SELECT ST_AsBinary(ST_Envelope(ST_Extent(geom))) FROM unit_parts WHERE level = 'grid'")
            )
            area = shapely.from_wkb(bytes(extent.scalar_one()))
        rows.append(measure(f"{n:,} grids", url, area.bounds, args.requests))
    print(f"\nload average after: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    print(
        f"{'dataset':<14} {'grids':>8} {'built':>7} {'file MB':>8} {'builder peak MB':>15}"
        f" {'worker RSS/PSS MB':>18} {'copy PSS/worker':>15} {'server PSS MB':>13}"
    )
    for r in rows:
        b, processes = r["built"], r["processes"]
        workers = [x for x in processes.values() if x["worker"]]
        print(
            f"{r['name']:<14} {b['grids']:>8,} {b['seconds']:>5.1f} s {b['file_mb']:>8.1f}"
            f" {b['peak_mb']:>15.0f}"
            f" {np.mean([w['rss'] for w in workers]):>8.0f} / {np.mean([w['pss'] for w in workers]):<7.0f}"
            f" {np.mean([w['copy_pss'] for w in workers]):>15.1f}"
            f" {sum(x['pss'] for x in processes.values()):>13.0f}"
        )
    print(
        f"\n{'dataset':<14} {'copy p50/p99 ms':>16} {'PostGIS p50/p99 ms':>19} {'no change p99/max':>18}"
        f" {'rebuild p99/max ms':>19}"
        f" {'gap ms':>7} {'failed':>6} {'new copy after':>14}  machine"
    )
    for r in rows:
        m, p, q, w = r["answers"], r["postgis"], r["steady"], r["rebuild"]
        print(
            f"{r['name']:<14} {m['server_p50']:>7.2f} / {m['server_p99']:<6.2f}"
            f" {p['server_p50']:>9.2f} / {p['server_p99']:<7.2f}"
            f" {q['p99']:>8.1f} / {q['max']:<7.1f}"
            f" {w['p99']:>9.1f} / {w['max']:<7.1f} {w['gap']:>7.1f} {w['failures']:>6}"
            f" {w['swapped_s']:>12.1f} s  {r['machine']}"
        )
    print(
        f"(server of {WORKERS} workers; latencies at the server, Server-Timing; the rebuild's figures at "
        "the client, with the HTTP round trip on localhost)"
    )


if __name__ == "__main__":
    main()
