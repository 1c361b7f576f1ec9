"""The cost of one shared rate-limit check (anonymous intake runs one per report).

    .venv/bin/python -m benchmarks.bench_rate_limit [--checks 5000] [--threads 8] [--addresses 1000]

A database of its own (`gridmap_bench_rate_limit`). Times `api.access.RateLimit.check` as the
intake route calls it (a pooled connection, one statement, in a thread), for one caller at a time
and for --threads at once, against the per-process count it replaced (a deque per address in
memory: cheap, but each of N workers admitted the whole limit). For scale: a served process took
~390 reports/s, ~2.6 ms of service time per report, on this machine.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor

from fastapi import HTTPException
from sqlalchemy import create_engine, text
from starlette.requests import Request

from api.access import RateLimit
from api.app import create_app
from benchmarks.bench_intake import cpu_times, machine_share
from benchmarks.bench_postgis import database, say
from geo.settings import Settings


def request_from(app, address: str) -> Request:
    """A request as the app sees it, from `address`."""
    return Request({"type": "http", "app": app, "client": (address, 1), "headers": [], "method": "POST",
                    "path": "/cases"})  # fmt: skip


def in_memory_us(addresses: list[str], limit: int) -> float:
    """µs per check of the per-process sliding window it replaced."""
    seen: dict[str, deque[float]] = defaultdict(deque)
    started = time.perf_counter()
    for address in addresses:
        now = time.monotonic()
        window = seen[address]
        while window and window[0] <= now - 60:
            window.popleft()
        if len(window) < limit:
            window.append(now)
    return (time.perf_counter() - started) / len(addresses) * 1e6


def main() -> None:
    """Print µs per check, sequential and concurrent, with the machine's load."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--addresses", type=int, default=1000)
    args = parser.parse_args()
    settings = Settings(secret_key="bench-secret-" + "x" * 40, background_jobs=False)
    url = database("gridmap_bench_rate_limit", settings)
    engine = create_engine(url, pool_size=args.threads + 2)
    app = create_app(settings, engine=engine)
    limit = RateLimit("bench", 10**9, 60)  # never refuses: every check is the common, allowed case
    addresses = [f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}" for i in range(args.addresses)]
    requests = [request_from(app, addresses[i % len(addresses)]) for i in range(args.checks)]
    for r in requests[:200]:
        limit.check(r)  # warm the pool and the statement cache

    say(f"load before: {os.getloadavg()}")
    before, started, cpu = cpu_times(), time.perf_counter(), time.process_time()
    for r in requests:
        limit.check(r)
    sequential = (time.perf_counter() - started) / len(requests)
    python_cpu = (time.process_time() - cpu) / len(requests)
    with ThreadPoolExecutor(args.threads) as pool:
        started = time.perf_counter()
        list(pool.map(limit.check, requests))
        together = time.perf_counter() - started
    share = machine_share(before, cpu_times())

    refusing = RateLimit("bench-refuse", 1, 60)
    flood = [request_from(app, f"10.254.0.{i}") for i in range(200)]
    for r in flood:
        refusing.check(r)  # each address uses its one request
    started = time.perf_counter()
    for r in flood:  # refused by the database (and remembered)
        with contextlib.suppress(HTTPException):
            refusing.check(r)
    refused_db = (time.perf_counter() - started) / len(flood)
    started = time.perf_counter()
    for r in flood * 5:  # refused from memory
        with contextlib.suppress(HTTPException):
            refusing.check(r)
    refused_mem = (time.perf_counter() - started) / (5 * len(flood))

    with engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM rate_limits")).scalar()
    print(f"shared check, one caller:        {sequential * 1e6:7.0f} µs per check "
          f"({python_cpu * 1e6:.0f} µs of it this process's CPU)")  # fmt: skip
    print(f"shared check, {args.threads} threads:        {together / len(requests) * 1e6:7.0f} µs per check "
          f"({len(requests) / together:,.0f} checks/s)")  # fmt: skip
    print(f"refused, first time (database): {refused_db * 1e6:7.0f} µs per check (two statements)")
    print(f"refused again (in memory):      {refused_mem * 1e6:7.1f} µs per check")
    print(f"per-process deque (replaced):   {in_memory_us([r.client.host for r in requests], 10**9):7.1f} µs")
    print(f"counter rows: {rows} for {args.addresses} addresses; {share}; load {os.getloadavg()}")
    engine.dispose()


if __name__ == "__main__":
    main()
