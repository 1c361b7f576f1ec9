"""/locate as the grids grow: the in-memory copy's build time and memory, latency, and a rebuild under load.

    .venv/bin/python -m benchmarks.bench_locate_scale [--grids 100000,400000] [--requests 3000] [--reuse]

For the demo county and synthetic partitions (benchmarks.partition, loaded as bench_postgis does):
  1. the in-memory copy (store.locate_cache.Snapshot) built in a fresh process: seconds and the
     process's resident memory before and after (what each server process holds);
  2. one `uvicorn` server process: /locate p50/p99 at the server (Server-Timing) and at the client
     from memory, against the same points asked of PostGIS (`at=` now: what /locate did before the
     copy, and what a user would otherwise run: a point-in-polygon query per point);
  3. a change of the grids (NOTIFY unit_changes, as a publish sends) while a client keeps asking:
     the server drops its copy at once and answers from PostGIS until the new copy is built; the
     p99 and worst latency while rebuilding, and whether any answer failed (a pause would show as a
     gap in answering or as errors).
Issue 19's targets: p99 ≤ 5 ms at the server at 400,000 grids, the copy ≤ 1 GB per machine, built
in ≤ 30 s, rebuilt without a pause in answering.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import httpx
import numpy as np
import shapely
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from benchmarks.bench_postgis import ROOT, database, free_port, load_partition, reused, say, wait_until_up
from geo.settings import Settings
from services.imports import load_demo
from store.locate_cache import Snapshot


def rss_mb() -> float:
    """This process's resident memory (MB)."""
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def _build(url: str, answer) -> None:
    import gc

    gc.collect()
    before = rss_mb()
    engine = create_engine(url)
    t0 = time.perf_counter()
    with Session(engine) as session:
        snapshot = Snapshot.load(session, tolerance_m=5.0)
    took = time.perf_counter() - t0
    engine.dispose()
    gc.collect()
    answer.send({"seconds": took, "rss_mb": rss_mb() - before, "grids": len(snapshot.grids)})


def build_figures(url: str) -> dict[str, float]:
    """Build the in-memory copy in a fresh process: seconds, resident MB it added, grids."""
    ours, theirs = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(target=_build, args=(url, theirs))
    process.start()
    figures = ours.recv()
    process.join()
    return figures


def serve(url: str) -> tuple[subprocess.Popen, str]:
    """One uvicorn process of the service on `url` (its copy of the grids is built in the background)."""
    port = free_port()
    env = {**os.environ, "GRIDMAP_DATABASE_URL": url, "GRIDMAP_DEMO": "1", "GRIDMAP_BACKGROUND_JOBS": "false"}
    command = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--port", str(port)]
    server = subprocess.Popen([*command, "--log-level", "warning"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    wait_until_up(base, server)
    return server, base


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


def during_rebuild(url: str, client: httpx.Client, lon: np.ndarray, lat: np.ndarray, window_s: float) -> dict:
    """Ask /locate back to back while the grids change: p99, worst, failures, longest gap."""
    times, failures, gaps = [], 0, []
    stop = time.monotonic() + window_s
    def change() -> None:  # what a publish or an import sends at commit (migration 0003's trigger)
        with create_engine(url, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text("NOTIFY unit_changes"))

    notified = threading.Timer(1.0, change)
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
        "requests": len(times),
        "p99": float(np.percentile(times, 99)),
        "max": max(times),
        "failures": failures,
        "gap": max(gaps),
    }


def measure(name: str, url: str, bounds: tuple[float, float, float, float], requests: int) -> dict:
    """Every figure for one dataset."""
    say(f"{name}: building the in-memory copy in a fresh process ...")
    built = build_figures(url)
    rng = np.random.default_rng(11)
    lon = rng.uniform(bounds[0], bounds[2], requests + 100)
    lat = rng.uniform(bounds[1], bounds[3], requests + 100)
    server, base = serve(url)
    try:
        time.sleep(built["seconds"] * 2 + 5)  # the server builds its own copy meanwhile
        with httpx.Client(base_url=base, timeout=30) as client:
            say(f"{name}: /locate from memory and from PostGIS, {requests} points each ...")
            memory = latencies(client, lon, lat, None)
            postgis = latencies(client, lon, lat, datetime.now(UTC).isoformat())
            say(f"{name}: a change of the grids while asking ...")
            rebuild = during_rebuild(url, client, lon, lat, built["seconds"] * 2 + 4)
    finally:
        server.terminate()
        server.wait(10)
    return {"name": name, "built": built, "memory": memory, "postgis": postgis, "rebuild": rebuild}


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
        f"{'dataset':<14} {'grids':>8} {'copy built':>10} {'copy MB':>8} {'memory p50/p99 ms':>18}"
        f" {'PostGIS p50/p99 ms':>19} {'rebuild p99/max ms':>19} {'gap ms':>7} {'failed':>6}"
    )
    for r in rows:
        b, m, p, w = r["built"], r["memory"], r["postgis"], r["rebuild"]
        print(
            f"{r['name']:<14} {b['grids']:>8,} {b['seconds']:>8.1f} s {b['rss_mb']:>8.0f}"
            f" {m['server_p50']:>8.2f} / {m['server_p99']:<7.2f}"
            f" {p['server_p50']:>9.2f} / {p['server_p99']:<7.2f}"
            f" {w['p99']:>9.1f} / {w['max']:<7.1f} {w['gap']:>7.1f} {w['failures']:>6}"
        )
    print("(latencies at the server, Server-Timing; client figures add the HTTP round trip on localhost)")


if __name__ == "__main__":
    main()
