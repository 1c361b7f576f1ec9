"""Sustained case intake: POST /cases against a served demo county, every acknowledged case counted.

    .venv/bin/python -m benchmarks.bench_intake [--seconds 30] [--concurrency 32] [--workers 2] [--rate R]
                                                [--streams 0,50,500] [--stream-encoding deflate]
                                                [--cases 1000000] [--database NAME]

A database of its own (`gridmap_bench_intake`, demo county loaded) served by `gridmap serve` in
a separate process (--workers uvicorn processes); the load comes from this process (asyncio and
plain HTTP/1.1 keep-alive connections, --concurrency of them): reports back to back, or with
--rate started on a fixed schedule (latency counted from when each was due). Each report has its
own Idempotency-Key and a point inside a random demo grid. Afterwards every acknowledged key is
looked up in the database: lost = acknowledged but absent. Service, PostgreSQL and the load
generator share this machine's cores.

The live feed (issue 13): each run is repeated with each number of open streams in --streams
(SSE clients of --stream-user: by default the county dispatcher, who sees every case, the most
data per stream), held by another process (benchmarks.live_streams) for the whole run, and one
more stream there counts the `created` events it receives against the cases acknowledged:
received, twice, never (the counting stream is always the county dispatcher's). The streams ask
for `Accept-Encoding: deflate` as browsers do (the feed then sends shared compressed segments:
api/live_deflate.py), or with --stream-encoding identity for the raw bytes.
The per-user stream limit is raised for the benchmark's one user (GRIDMAP_MAX_STREAMS_PER_USER).

With --database, a database of the embedded cluster that already holds grids and cases (e.g. the
synthetic province with 10 M cases, grown by benchmarks.case_volume) is served instead: nothing is
dropped or loaded, the reports go to points of all its grids, and a field worker and a dispatcher
of its top unit (`bench.intake.worker`, `bench.intake.dispatcher`, the demo password) are added if
missing. The reports stay in it (open cases of today, ids below the generated ones).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from access.roles import Role
from benchmarks.bench_postgis import database, free_port, reused, say, wait_until_up
from benchmarks.case_volume import load_cases
from benchmarks.live_streams import Watcher
from cases.model import scoped_key
from geo.demo import DEMO_PASSWORD
from geo.settings import Settings
from services.imports import load_demo
from store import users

REPORTER = "field.worker"  # a demo user
WORKER, DISPATCHER = "bench.intake.worker", "bench.intake.dispatcher"  # --database: its top unit's
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


class Connection:
    """One HTTP/1.1 keep-alive connection, a request at a time: far less client CPU than httpx,
    which shares the two cores with the service and PostgreSQL."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host
        self.used = 0  # requests sent on it

    @classmethod
    async def open(cls, base: str) -> Connection:
        """A connection to the server at `base` (http://host:port)."""
        url = urlsplit(base)
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        return cls(reader, writer, url.netloc)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST `body` as JSON: (status, response body)."""
        self.used += 1
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{head}\r\n".encode()
            + body
        )
        status_line, *lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        fields = dict(line.lower().split(": ", 1) for line in lines if ": " in line)
        if "content-length" not in fields:
            raise ValueError(f"an answer without Content-Length: {status_line}")
        return int(status_line.split()[1]), await self.reader.readexactly(int(fields["content-length"]))

    def close(self) -> None:
        """Hang up."""
        self.writer.close()


def report(points: np.ndarray, i: int) -> bytes:
    """Report number i: a point inside a demo grid, a subclass, a description of its own."""
    lon, lat = points[i % len(points)]
    body = {
        "lon": float(lon),
        "lat": float(lat),
        "accuracy_m": 10,
        "category": CATEGORIES[i % len(CATEGORIES)],
        "description": f"巡查发现问题 {i}",
        "source": "patrol",
    }
    return json.dumps(body, ensure_ascii=False).encode()


async def load(
    base: str,
    points: np.ndarray,
    seconds: float,
    concurrency: int,
    auth: dict,
    rate: float | None = None,
    per_connection: int | None = None,
) -> dict:
    """Post reports for `seconds`: back to back on `concurrency` connections, or (with `rate`)
    started on a fixed schedule of `rate` per second, at most `concurrency` in flight.

    A scheduled report's latency counts from when it was due, so a server that falls behind shows
    it in the latencies (no coordinated omission); each report has its own Idempotency-Key. With
    `per_connection`, a connection is closed after that many reports and a new one opened (as
    phones do; it also lets the server processes share the connections as they accept them).
    """
    latencies: list[float] = []
    acknowledged: list[str] = []
    case_ids: list[int] = []
    failures: dict[str, int] = {}
    counter = iter(range(10**9))
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(concurrency):
        pool.put_nowait(await Connection.open(base))
    clock = asyncio.get_running_loop().time

    async def send(due: float) -> None:
        i = next(counter)
        key = str(uuid.uuid4())
        connection = await pool.get()
        try:
            status, answer = await connection.post(
                "/cases", report(points, i), {**auth, "Idempotency-Key": key}
            )
        except (OSError, ValueError, asyncio.IncompleteReadError) as e:
            failures[type(e).__name__] = failures.get(type(e).__name__, 0) + 1
            connection.close()
            pool.put_nowait(await Connection.open(base))
            return
        latencies.append(clock() - due)
        if status == 201:
            acknowledged.append(key)
            case_ids.append(json.loads(answer)["id"])
        else:
            failures[str(status)] = failures.get(str(status), 0) + 1
        if per_connection and connection.used >= per_connection:
            connection.close()
            connection = await Connection.open(base)
        pool.put_nowait(connection)

    async def back_to_back(deadline: float) -> None:
        while clock() < deadline:
            await send(clock())

    async def scheduled(start: float) -> None:
        tasks = []
        for n in range(int(seconds * rate)):
            due = start + n / rate
            await asyncio.sleep(max(0.0, due - clock()))
            tasks.append(asyncio.create_task(send(due)))
        await asyncio.gather(*tasks)

    started = clock()
    if rate is None:
        await asyncio.gather(*(back_to_back(started + seconds) for _ in range(concurrency)))
    else:
        await scheduled(started)
    took = clock() - started
    while not pool.empty():
        pool.get_nowait().close()
    return {
        "latencies": np.array(latencies),
        "acknowledged": acknowledged,
        "case_ids": case_ids,
        "failures": failures,
        "took": took,
    }


def cpu_times() -> list[int]:
    """This machine's CPU time so far, in ticks: user, nice, system, idle, iowait, irq, softirq, steal."""
    with open("/proc/stat") as stat:
        return [int(t) for t in stat.readline().split()[1:9]]


def process_cpu_s(root: int) -> float:
    """CPU seconds used so far by process `root` and its children (the server and its workers)."""
    ticks, pids = 0, {root}
    for stat in sorted(os.listdir("/proc")):
        if stat.isdigit():
            try:
                with open(f"/proc/{stat}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat) in pids or int(fields[1]) in pids:  # fields[1]: the parent
                ticks += int(fields[11]) + int(fields[12])  # user and system time
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_share(before: list[int], after: list[int]) -> str:
    """How busy the machine was between two cpu_times(), and how much the hypervisor stole.

    The latency tail follows the steal: a few percent of it over a run (it comes in bursts) is
    enough to double the p99, so every run says how quiet its machine was.
    """
    spent = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(spent) or 1
    busy, steal = total - spent[3] - spent[4] - spent[7], spent[7]
    return f"machine busy {100 * busy / total:.0f} %, stolen by the hypervisor {100 * steal / total:.1f} %"


def count_present(url: str, keys: list[str], username: str) -> int:
    """How many of the acknowledged keys have a case in the database (keys are stored as the
    user's own: cases.model.scoped_key)."""
    engine = create_engine(url)
    with Session(engine) as session:
        user_id = session.execute(text("SELECT id FROM users WHERE username = :u"), {"u": username}).scalar()
        keys = [scoped_key(k, user_id) for k in keys]
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
    parser.add_argument(
        "--rate", type=float, default=None, help="reports per second on a schedule (default: back to back)"
    )
    parser.add_argument(
        "--per-connection", type=int, default=None, help="reports per connection (default: keep it open)"
    )
    parser.add_argument(
        "--streams",
        default="0",
        help="open live-feed streams during the run, comma-separated for one run each (e.g. 0,50,500)",
    )
    parser.add_argument(
        "--stream-user",
        default="dispatcher",
        help="demo user holding the streams: dispatcher (the county's, sees every case: the most data"
        " per stream) or street.dispatcher (one street of 21)",
    )
    parser.add_argument(
        "--stream-encoding",
        default="deflate",
        choices=["deflate", "identity"],
        help="what the streams accept: deflate (as browsers) or identity (uncompressed)",
    )
    parser.add_argument("--database", help="serve this database of the embedded cluster as it is (see above)")
    parser.add_argument(
        "--cases",
        type=int,
        default=0,
        help="cases stored before the run (benchmarks.case_volume: a year of them)",
    )
    args = parser.parse_args()
    streams = [int(n) for n in args.streams.split(",")]
    settings = Settings(database_url=None)
    global REPORTER
    if args.database:
        url = reused(args.database, settings)
        if url is None:
            raise SystemExit(f"no grids in database {args.database}")
        REPORTER, args.stream_user, counter = WORKER, DISPATCHER, DISPATCHER
        top_users(url)
    else:
        url, counter = database("gridmap_bench_intake", settings), "dispatcher"
        with Session(create_engine(url)) as session, session.begin():
            load_demo(session, settings, progress=say)
    if args.cases:
        say(f"loading {args.cases:,} cases")
        load_cases(url, args.cases, end=datetime.now(UTC))
    points = demo_points(url, 100_000)
    port = free_port()
    env = {
        **os.environ,
        "GRIDMAP_DATABASE_URL": url,
        "GRIDMAP_BACKGROUND_JOBS": "false",
        "GRIDMAP_DEMO": "1",
        "GRIDMAP_MAX_STREAMS_PER_USER": str(max(streams) + 1),  # one user holds them all
    }
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
    results = []
    try:
        wait_until_up(base, server)
        # A signed-in field worker (demo user): anonymous intake is rate-limited per address.
        auth = sign_in(base, REPORTER)
        streams_auth = sign_in(base, args.stream_user)
        counter_auth = sign_in(base, counter)  # the county's (the top unit's): sees every case
        say("warming up (and letting the servers build their in-memory grids) ...")
        asyncio.run(load(base, points, 8, args.concurrency, auth, args.rate, args.per_connection))
        for k, n in enumerate(streams):
            offset = 20000 * (1 + k % 4)  # points not used by the warm-up
            say(f"opening {n} live-feed stream(s) and a counting one ...")
            watcher = Watcher(base, streams_auth, counter_auth, n, args.stream_encoding)
            pace = f"{args.rate:g}/s scheduled, at most" if args.rate else "back to back,"
            say(f"posting reports for {args.seconds:g} s, {pace} {args.concurrency} in flight ...")
            # This process's own pauses would count as the service's latency: a full garbage
            # collection walked what loading the demo left here for ~100 ms, once or twice a run.
            gc.collect()
            gc.freeze()
            before, load_before, server_before = cpu_times(), os.getloadavg()[0], process_cpu_s(server.pid)
            pace_args = (args.concurrency, auth, args.rate, args.per_connection)
            result = asyncio.run(load(base, points[offset:], args.seconds, *pace_args))
            result["during"] = f"{machine_share(before, cpu_times())}, load average {load_before:.1f}"
            result["during"] += f" to {os.getloadavg()[0]:.1f}"
            result["server_cpu_s"] = process_cpu_s(server.pid) - server_before
            result["streams"], result["opened"] = n, watcher.opened
            result["events"] = watcher.result(result["case_ids"])
            results.append(result)
    finally:
        server.terminate()
        server.wait(timeout=20)
    print(
        f"workers={args.workers} concurrency={args.concurrency} rate={args.rate or 'back to back'}"
        f" per_connection={args.per_connection or 'all'} streams held by {args.stream_user}"
        f" accepting {args.stream_encoding}"
    )
    for result in results:
        report_run(url, result)


def top_users(url: str) -> None:
    """A field worker and a dispatcher of the database's top unit, unless they exist."""
    engine = create_engine(url)
    with Session(engine) as session, session.begin():
        top = session.execute(text("SELECT min(code) FROM units WHERE parent_code IS NULL")).scalar_one()
        have = set(users.usernames(session))
        for name, role in ((WORKER, Role.FIELD_WORKER), (DISPATCHER, Role.DISPATCHER)):
            if name not in have:
                users.add_user(session, name, DEMO_PASSWORD, role, top)
    engine.dispose()


def sign_in(base: str, username: str) -> dict[str, str]:
    """The Authorization header of a demo user."""
    login = httpx.post(f"{base}/auth/token", data={"username": username, "password": DEMO_PASSWORD})
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def report_run(url: str, result: dict) -> None:
    """Print one run's figures: intake, latency, the machine, losses, the live feed's delivery."""
    acknowledged = result["acknowledged"]
    present = count_present(url, acknowledged, REPORTER)
    lat_ms = result["latencies"] * 1000
    opened, events = result["opened"], result["events"]
    print(
        f"\n-- {result['streams']} open stream(s) ({opened['connected']} connected,"
        f" {opened['refused']} refused) + 1 counting; duration={result['took']:.1f} s"
    )
    print(
        f"acknowledged (201): {len(acknowledged):,}   rate: {len(acknowledged) / result['took']:,.0f} cases/s"
    )
    print(
        f"latency at the client: p50 {np.percentile(lat_ms, 50):.1f} ms,"
        f" p99 {np.percentile(lat_ms, 99):.1f} ms, max {lat_ms.max():.1f} ms"
    )
    print(f"failures: {result['failures'] or 'none'}")
    print(f"during the run: {result['during']}")
    # On a busy machine the rate follows the share of the cores the service gets; its CPU time
    # per case does not: it is what open streams add to the service's own work.
    print(
        f"service CPU: {result['server_cpu_s']:.1f} s in all,"
        f" {1000 * result['server_cpu_s'] / max(len(acknowledged), 1):.2f} ms per acknowledged case"
    )
    print(
        f"present in the database: {present:,} of {len(acknowledged):,}"
        f"  (lost: {len(acknowledged) - present})"
    )
    print(
        f"live feed: cases acknowledged {events['acknowledged']:,}, created events received"
        f" {events['received']:,} (twice: {events['twice']}, never: {events['missing']});"
        f" per open stream: {events['events_per_reader']:,.0f} events (counted by a sample),"
        f" {events['bytes_per_reader'] / 1e6:,.1f} MB received"
    )


if __name__ == "__main__":
    main()
