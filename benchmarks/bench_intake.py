"""Sustained case intake: POST /cases against a served demo county, every acknowledged case counted.

    .venv/bin/python -m benchmarks.bench_intake [--seconds 30] [--concurrency 32] [--workers 2]

A database of its own (`gridmap_bench_intake`, demo county loaded) served by `gridmap serve` in
a separate process (--workers uvicorn processes); the load comes from this process (asyncio +
httpx, --concurrency requests in flight), each report with its own Idempotency-Key at a point
inside a random demo grid. Afterwards every acknowledged key is looked up in the database: lost =
acknowledged but absent. Service, PostgreSQL and the load generator share this machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid

import httpx
import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from benchmarks.bench_postgis import database, free_port, say, wait_until_up
from geo.demo import DEMO_PASSWORD, load_demo
from geo.settings import Settings

CATEGORIES = ["0101", "0102", "0103", "0201", "0301", "0401", "0801", "1101"]


def demo_points(url: str, n: int, seed: int = 3) -> np.ndarray:
    """n points inside demo grids (a point on each grid's surface, jittered inside it)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM unit_versions "
                "WHERE valid_to IS NULL AND length(code) = 15) s"
            )
        ).all()
    engine.dispose()
    rng = np.random.default_rng(seed)
    base = np.array(rows)[rng.integers(0, len(rows), n)]
    return base + rng.normal(0, 0.0003, base.shape)  # ~30 m: some land in neighbours, a few snap


async def load(base: str, points: np.ndarray, seconds: float, concurrency: int, auth: dict) -> dict:
    """Post reports for `seconds` with `concurrency` in flight; latencies and acknowledged keys."""
    latencies: list[float] = []
    acknowledged: list[str] = []
    failures: dict[str, int] = {}
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            i = next(counter)
            lon, lat = points[i % len(points)]
            key = str(uuid.uuid4())
            body = {
                "lon": float(lon),
                "lat": float(lat),
                "accuracy_m": 10,
                "category": CATEGORIES[i % 8],
                "description": f"巡查发现问题 {i}",
                "source": "patrol",
            }
            started = time.perf_counter()
            try:
                r = await client.post("/cases", json=body, headers={**auth, "Idempotency-Key": key})
            except httpx.HTTPError as e:
                failures[type(e).__name__] = failures.get(type(e).__name__, 0) + 1
                continue
            latencies.append(time.perf_counter() - started)
            if r.status_code == 201:
                acknowledged.append(key)
            else:
                failures[str(r.status_code)] = failures.get(str(r.status_code), 0) + 1

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        took = time.perf_counter() - started
    return {
        "latencies": np.array(latencies),
        "acknowledged": acknowledged,
        "failures": failures,
        "took": took,
    }


def count_present(url: str, keys: list[str]) -> int:
    """How many of the acknowledged keys have a case in the database."""
    engine = create_engine(url)
    with Session(engine) as session:
        n = session.execute(
            text("SELECT count(*) FROM cases WHERE idempotency_key = ANY(CAST(:keys AS uuid[]))"),
            {"keys": keys},
        ).scalar_one()
    engine.dispose()
    return n


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    args = parser.parse_args()
    settings = Settings(database_url=None)
    url = database("gridmap_bench_intake", settings)
    with Session(create_engine(url)) as session, session.begin():
        load_demo(session, settings, progress=say)
    points = demo_points(url, 100_000)
    port = free_port()
    env = {**os.environ, "GRIDMAP_DATABASE_URL": url, "GRIDMAP_BACKGROUND_JOBS": "false", "GRIDMAP_DEMO": "1"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
        ],
        env=env,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, server)
        # A signed-in field worker (demo user): anonymous intake is rate-limited per address.
        login = httpx.post(f"{base}/auth/token", data={"username": "field.worker", "password": DEMO_PASSWORD})
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        say("warming up (and letting the servers build their in-memory grids) ...")
        asyncio.run(load(base, points, 8, args.concurrency, auth))
        say(f"posting reports for {args.seconds:g} s with {args.concurrency} in flight ...")
        result = asyncio.run(load(base, points[20000:], args.seconds, args.concurrency, auth))
    finally:
        server.terminate()
        server.wait(timeout=20)
    acknowledged = result["acknowledged"]
    present = count_present(url, acknowledged)
    lat_ms = result["latencies"] * 1000
    print(f"workers={args.workers} concurrency={args.concurrency} duration={result['took']:.1f} s")
    print(
        f"acknowledged (201): {len(acknowledged):,}   rate: {len(acknowledged) / result['took']:,.0f} cases/s"
    )
    print(
        f"latency at the client: p50 {np.percentile(lat_ms, 50):.1f} ms,"
        f" p99 {np.percentile(lat_ms, 99):.1f} ms, max {lat_ms.max():.1f} ms"
    )
    print(f"failures: {result['failures'] or 'none'}")
    print(
        f"present in the database: {present:,} of {len(acknowledged):,}"
        f"  (lost: {len(acknowledged) - present})"
    )


if __name__ == "__main__":
    main()
