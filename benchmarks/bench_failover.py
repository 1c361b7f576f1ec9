"""Failover under load: the local Patroni cluster loses its primary while reports keep coming.

    .venv/bin/python -m benchmarks.bench_failover [--rate 100] [--seconds 40] [--at 12]
                                                   [--mode kill|switchover]

`gridmap ha up` (three nodes, synchronous mode), the demo county loaded, one `gridmap serve` on the
multi-host URL. Reporters send `--rate` reports a second, each with its own Idempotency-Key, and
retry with the same key on any 5xx or lost connection (as the phone pages' queues do). A dispatcher
follows the case stream (SSE), reconnecting with Last-Event-ID. At `--at` s the leader is killed
(`kill -9` of its Patroni and postmaster: a machine failing) or switched over (planned); a
dispatcher reads the `/cases` list ten times a second all along (never retried). Printed:
the time from the kill to the next acknowledged report, the answers seen during the gap (any 500
is a failure), every acknowledged case counted in the database (present exactly once), and the
created events the stream delivered against the cases acknowledged, the list reads' answers, the
load average and the hypervisor's steal. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import create_engine, text

from benchmarks.bench_intake import cpu_times, machine_share
from benchmarks.bench_postgis import free_port, say, wait_until_up
from cases.model import scoped_key
from geo.settings import Settings
from store.engine import normalize_url
from store.ha_cluster import LocalHaCluster
from store.migrate import upgrade

POINT = {"lon": 114.90, "lat": 33.43}  # inside the demo county
RETRY_S = 0.5
GIVE_UP_S = 60  # a report still unacknowledged this long after it was made counts as lost
READ_EVERY_S = 0.1
# Longer than the server's GRIDMAP_DATABASE_WAIT_S (10 s): during a switchover a request waits that
# long for the new primary, and a client that gives up first sees its own timeout as an error.
CLIENT_TIMEOUT_S = 30


class Reporters:
    """Reports at a steady rate, each retried with its key until acknowledged."""

    def __init__(self, base: str, rate: float, seconds: float) -> None:
        self.base, self.rate, self.seconds = base, rate, seconds
        self.lock = threading.Lock()
        self.acked: dict[str, int] = {}  # key -> case id
        self.seen: Counter[str] = Counter()  # every answer: status code or error kind
        self.ack_times: list[float] = []

    def run(self) -> None:
        """Send for `seconds`, then wait for the retries to settle."""
        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=64) as pool:
            n = 0
            while (elapsed := time.monotonic() - start) < self.seconds:
                pool.submit(self._one, str(uuid.uuid4()), n)
                n += 1
                time.sleep(max(0.0, n / self.rate - (time.monotonic() - start)))
        self.sent = n
        del elapsed

    def _one(self, key: str, n: int) -> None:
        body = {**POINT, "category": "0101", "description": f"故障切换测试 {n}"}
        made = time.monotonic()
        with httpx.Client(timeout=CLIENT_TIMEOUT_S) as client:
            while time.monotonic() - made < GIVE_UP_S:
                try:
                    answer = client.post(f"{self.base}/cases", json=body, headers={"Idempotency-Key": key})
                    kind = str(answer.status_code)
                except httpx.HTTPError as exc:
                    answer, kind = None, type(exc).__name__
                with self.lock:
                    self.seen[kind] += 1
                if answer is not None and answer.status_code in (200, 201):
                    with self.lock:
                        self.acked[key] = answer.json()["id"]
                        self.ack_times.append(time.monotonic())
                    return
                if answer is not None and answer.status_code < 500 and answer.status_code != 429:
                    return  # refused for a reason: not the failover's doing
                time.sleep(RETRY_S)


class Readers:
    """A dispatcher's `/cases` list, read again and again while the leader goes: every answer counted
    (a read is never retried: any answer but 200 is an error the dispatcher saw)."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token
        self.seen: Counter[str] = Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        """Read every READ_EVERY_S until stopped."""
        with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {self.token}"}) as client:
            while not self.stop.is_set():
                try:
                    kind = str(client.get(f"{self.base}/cases", params={"limit": 20}).status_code)
                except httpx.HTTPError as exc:
                    kind = type(exc).__name__
                self.seen[kind] += 1
                time.sleep(READ_EVERY_S)


class Stream:
    """The case stream as a dispatcher's page follows it, resuming with Last-Event-ID."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token
        self.created: set[int] = set()
        self.reconnects = 0
        self.stop = threading.Event()

    def run(self) -> None:
        """Read until stopped, reconnecting after any loss."""
        last = None
        while not self.stop.is_set():
            headers = {"Authorization": f"Bearer {self.token}", **({"Last-Event-ID": last} if last else {})}
            try:
                with httpx.stream("GET", f"{self.base}/cases/stream", headers=headers, timeout=30) as answer:
                    event = None
                    for line in answer.iter_lines():
                        if self.stop.is_set():
                            return
                        if line.startswith("id:"):
                            last = line[3:].strip()
                        elif line.startswith("event:"):
                            event = line[6:].strip()
                        elif line.startswith("data:") and event == "created":
                            data = json.loads(line[5:])
                            self.created.add(int(data.get("id") or data.get("case", {}).get("id")))
            except (httpx.HTTPError, ValueError):
                pass
            self.reconnects += 1
            time.sleep(1)


def main() -> None:
    """Run one failover (or switchover) under load and print what happened."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--at", type=float, default=12, help="seconds into the load when the leader goes")
    parser.add_argument("--mode", choices=["kill", "switchover"], default="kill")
    parser.add_argument("--server-log", default="/dev/null", help="where the server's output goes")
    args = parser.parse_args()

    settings = Settings(database_url=None)
    cluster = LocalHaCluster(settings)
    url = cluster.up(progress=say)
    upgrade(normalize_url(url))
    env = {
        **os.environ,
        "GRIDMAP_DATABASE_URL": url,
        "GRIDMAP_DEMO": "1",
        "GRIDMAP_PUBLIC_INTAKE_PER_MINUTE": "1000000",
    }
    say("loading the demo county (once) ...")
    subprocess.run([sys.executable, "-m", "cli.main", "demo"], env=env, check=True, capture_output=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(args.server_log, "wb")  # noqa: SIM115 - open for the server's whole life
    server = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        wait_until_up(base, server)
        token = httpx.post(
            f"{base}/auth/token",
            data={"username": "dispatcher", "password": "gridmap-demo"},
            timeout=CLIENT_TIMEOUT_S,
        ).json()["access_token"]
        cluster.wait_healthy()
        stream = Stream(base, token)
        threading.Thread(target=stream.run, daemon=True).start()
        readers = Readers(base, token)
        threading.Thread(target=readers.run, daemon=True).start()
        cpu_before = cpu_times()
        reporters = Reporters(base, args.rate, args.seconds)
        load = threading.Thread(target=reporters.run)
        load.start()
        time.sleep(args.at)
        say(f"{args.mode}: the leader goes ({cluster.leader().name if cluster.leader() else '?'})")
        gone_at = time.monotonic()
        if args.mode == "kill":
            killed = cluster.kill_leader()
        else:
            cluster.switchover(progress=say)
            killed = None
        load.join()
        time.sleep(5)  # let the stream deliver the last events
        stream.stop.set()
        readers.stop.set()
        machine = machine_share(cpu_before, cpu_times())
        if killed:
            cluster.restart_node(killed)
        # Writes stopped: the longest stretch without an acknowledgement from a second before the
        # leader went (reports in flight may still be acknowledged just after it).
        times = sorted(t for t in reporters.ack_times if t > gone_at - 1)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        back = max(gaps, default=None)
        check = create_engine(normalize_url(url))
        with check.connect() as conn:
            ids = list(reporters.acked.values())
            counts = (
                conn.execute(text("SELECT id FROM cases WHERE id = ANY(:ids)"), {"ids": ids}).scalars().all()
            )
            keys = [scoped_key(k, None) for k in reporters.acked]
            twice = conn.execute(
                text(
                    "SELECT count(*) FROM (SELECT idempotency_key FROM cases WHERE idempotency_key = ANY("
                    "CAST(:keys AS uuid[])) GROUP BY 1 HAVING count(*) > 1) t"
                ),
                {"keys": keys},
            ).scalar_one()
        check.dispose()
        acked = set(reporters.acked.values())
        print(
            f"mode {args.mode}, {args.rate:g} reports/s for {args.seconds:g} s, "
            f"leader gone at {args.at:g} s; "
            f"load average {os.getloadavg()[0]:.1f} on 2 cores, {machine}"
        )
        print(
            "| reports made | acknowledged | in the database once | stored twice | lost | "
            "writes stopped for (longest gap) | answers seen | stream: created events / acknowledged "
            "| list reads (not retried) |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        print(
            f"| {reporters.sent} | {len(acked)} | {len(set(counts))} | {twice} "
            f"| {reporters.sent - len(acked)} "
            f"| {'never' if back is None else f'{back:.1f} s'} "
            f"| {', '.join(f'{k}: {v}' for k, v in sorted(reporters.seen.items()))} "
            f"| {len(stream.created & acked)} / {len(acked)} ({stream.reconnects} reconnects) "
            f"| {', '.join(f'{k}: {v}' for k, v in sorted(readers.seen.items()))} |"
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
