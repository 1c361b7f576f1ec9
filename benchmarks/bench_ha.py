"""Reads on one node against three, and intake with synchronous replication against without.

    .venv/bin/python -m benchmarks.bench_ha [--seconds 20] [--concurrency 16]

`gridmap ha up` (three Patroni nodes, GRIDMAP_HA_BASE_PORT), the demo county loaded on it once,
one `gridmap serve` at a time on the multi-host URL:

1. reads: vector tiles of the county (zoom 12-14) and `/cases` lists (50 a page, the county
   dispatcher), back to back on --concurrency connections, with every read on the primary (the
   default) and with GRIDMAP_READ_FROM_STANDBY (bound 5 s); each node's transactions are counted
   during the run, to show where the reads went;
2. intake: POST /cases back to back (each with an Idempotency-Key) with Patroni's
   synchronous_mode on (a commit waits for the synchronous standby) and off.

All three nodes, the service and the load share this machine's cores: a standby here adds no
CPU, so the reads figure shows the cost of the routing, not the scale-out three machines give.
The load average and the hypervisor's steal are printed with every figure. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time

import httpx
import numpy as np
import psycopg
from sqlalchemy import create_engine, text

from benchmarks.bench_intake import cpu_times, demo_points, load, machine_share, sign_in
from benchmarks.bench_postgis import free_port, say, wait_until_up
from geo.settings import Settings
from store.cluster import HOST
from store.engine import normalize_url
from store.ha_cluster import LocalHaCluster
from store.migrate import upgrade


def tile_urls(url: str) -> list[str]:
    """Tiles over the demo county's extent (zoom 12-14)."""
    engine = create_engine(normalize_url(url))
    with engine.connect() as conn:
        box = conn.execute(
            text(
                "SELECT ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM unit_versions"
                " WHERE code = '411681' AND valid_to IS NULL"
            )
        ).one()
    engine.dispose()
    urls = []
    for z in (12, 13, 14):
        n = 2**z
        x0, x1 = int((box[0] + 180) / 360 * n), int((box[2] + 180) / 360 * n)
        y0, y1 = (int((1 - np.arcsinh(np.tan(np.radians(lat))) / np.pi) / 2 * n) for lat in (box[3], box[1]))
        urls += [f"/map/tiles/{z}/{x}/{y}.pbf" for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]
    return urls


async def reads(base: str, paths: list[str], auth: dict, seconds: float, concurrency: int) -> dict:
    """GET `paths` round robin, back to back on `concurrency` connections: answers and latencies."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(10**9))
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=auth, limits=limits, timeout=30) as client:
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            while time.monotonic() < deadline:
                started = time.monotonic()
                answer = await client.get(paths[next(counter) % len(paths)])
                latencies.append(time.monotonic() - started)
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"latencies": np.array(latencies), "statuses": statuses}


def transactions(cluster: LocalHaCluster) -> dict[int, int]:
    """Each node's committed transactions so far (the database of the service)."""
    counts = {}
    for port in cluster.pg_ports:
        with psycopg.connect(
            host=HOST, port=port, user="postgres", password=cluster._password("superuser"), dbname="gridmap"
        ) as conn:
            counts[port] = conn.execute(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
            ).fetchone()[0]
    return counts


class Service:
    """`gridmap serve` on the cluster with extra settings, for the length of a `with`."""

    def __init__(self, url: str, **settings: str) -> None:
        self.env = {**os.environ, "GRIDMAP_DATABASE_URL": url, "GRIDMAP_DEMO": "1", **settings}

    def __enter__(self) -> str:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--port", str(port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until_up(self.base, self.process)
        return self.base

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def row(label: str, took: float, latencies: np.ndarray, extra: str) -> str:
    """One line of a figures table."""
    p50, p99 = (np.percentile(latencies, q) * 1000 if len(latencies) else float("nan") for q in (50, 99))
    return (
        f"| {label} | {len(latencies) / took:.0f}/s | {p50:.1f} ms | {p99:.1f} ms | {extra} "
        f"| {os.getloadavg()[0]:.1f} |"
    )


def bench_reads(cluster: LocalHaCluster, url: str, seconds: float, concurrency: int) -> None:
    """Tiles and lists, reads on the primary against reads on the standbys."""
    tiles = tile_urls(url)
    print(
        f"\nreads: {len(tiles)} tiles (z12-14) and /cases?limit=50,"
        f" {concurrency} connections, {seconds:g} s each"
    )
    print("| reads | throughput | p50 | p99 | transactions per node (leader first) | load |")
    print("|---|---|---|---|---|---|")
    for label, settings in (
        ("one node (the primary)", {}),
        (
            "three nodes (standbys, bound 5 s)",
            {"GRIDMAP_READ_FROM_STANDBY": "true", "GRIDMAP_READ_MAX_LAG_S": "5"},
        ),
    ):
        with Service(url, **settings) as base:
            auth = sign_in(base, "dispatcher")
            for what, paths in (("tiles", tiles), ("/cases lists", ["/cases?limit=50"])):
                leader = cluster.leader()
                before, cpu = transactions(cluster), cpu_times()
                result = asyncio.run(reads(base, paths, auth, seconds, concurrency))
                after = transactions(cluster)
                order = sorted(after, key=lambda p: p != (leader.port if leader else 0))
                spread = " / ".join(f"{after[p] - before[p]:,}" for p in order)
                bad = {k: v for k, v in result["statuses"].items() if k not in (200, 204)}
                extra = spread + (f"; errors {bad}" if bad else "")
                print(row(f"{what}: {label}", seconds, result["latencies"], extra), flush=True)
                print(f"|  | {machine_share(cpu, cpu_times())} |  |  |  |  |", flush=True)


def bench_intake(cluster: LocalHaCluster, url: str, seconds: float, concurrency: int) -> None:
    """Reports back to back with synchronous replication on and off."""
    points = demo_points(normalize_url(url), 2000)
    print(f"\nintake: POST /cases back to back, {concurrency} connections, {seconds:g} s each")
    print("| synchronous_mode | throughput | p50 | p99 | acknowledged / failed | load |")
    print("|---|---|---|---|---|---|")
    try:
        for sync in (True, False):
            cluster.configure({"synchronous_mode": sync})
            deadline = time.monotonic() + 60
            while any(m.role == "sync_standby" for m in cluster.members()) != sync:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"synchronous_mode {sync} not applied in 60 s")
                time.sleep(0.5)
            with Service(url, GRIDMAP_PUBLIC_INTAKE_PER_MINUTE="10000000") as base:
                auth = sign_in(base, "field.worker")
                cpu = cpu_times()
                result = asyncio.run(load(base, points, seconds, concurrency, auth))
                failed = sum(result["failures"].values())
                extra = f"{len(result['acknowledged']):,} / {failed}"
                print(row("on" if sync else "off", result["took"], result["latencies"], extra), flush=True)
                print(f"|  | {machine_share(cpu, cpu_times())} |  |  |  |  |", flush=True)
    finally:
        cluster.configure({"synchronous_mode": True})


def main() -> None:
    """Bring the cluster up, load the demo county once, run both comparisons."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--only", choices=["reads", "intake"])
    args = parser.parse_args()
    cluster = LocalHaCluster(Settings(database_url=None))
    url = cluster.up(progress=say)
    upgrade(normalize_url(url))
    engine = create_engine(normalize_url(url))
    with engine.connect() as conn:
        grids = conn.execute(text("SELECT count(*) FROM units WHERE code LIKE '411681%'")).scalar_one()
    engine.dispose()
    if not grids:
        say("loading the demo county (once) ...")
        env = {**os.environ, "GRIDMAP_DATABASE_URL": url, "GRIDMAP_DEMO": "1"}
        subprocess.run([sys.executable, "-m", "cli.main", "demo"], env=env, check=True, capture_output=True)
    print(
        f"{time.strftime('%Y-%m-%d %H:%M')}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    if args.only != "intake":
        bench_reads(cluster, url, args.seconds, args.concurrency)
    if args.only != "reads":
        bench_intake(cluster, url, args.seconds, args.concurrency)


if __name__ == "__main__":
    main()
