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
import os
import subprocess
import sys
import threading
import time

import httpx

from benchmarks.bench_intake import cpu_times, machine_share
from benchmarks.bench_postgis import free_port, say, wait_until_up
from benchmarks.failover_load import CLIENT_TIMEOUT_S, Readers, Reporters, Stream, stored_once
from geo.settings import Settings
from store.engine import normalize_url
from store.ha_cluster import LocalHaCluster
from store.migrate import upgrade

POINT = {"lon": 114.90, "lat": 33.43}  # inside the demo county


def report(n: int) -> dict:
    """The `n`th report of the load."""
    return {**POINT, "category": "0101", "description": f"故障切换测试 {n}"}


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
        stream = Stream(base, {"Authorization": f"Bearer {token}"}, timeout_s=30, pause_s=1).start()
        readers = Readers(base, token)
        threading.Thread(target=readers.run, daemon=True).start()
        cpu_before = cpu_times()
        reporters = Reporters(base, args.rate, args.seconds, report)
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
        back = reporters.longest_gap_after(gone_at - 1)
        once, twice = stored_once(url, reporters.acked)
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
            f"| {reporters.sent} | {len(acked)} | {once} | {twice} "
            f"| {reporters.sent - len(acked)} "
            f"| {'never' if back is None else f'{back:.1f} s'} "
            f"| {', '.join(f'{k}: {v}' for k, v in sorted(reporters.answers.items()))} "
            f"| {len(stream.created & acked)} / {len(acked)} ({stream.reconnects} reconnects) "
            f"| {', '.join(f'{k}: {v}' for k, v in sorted(readers.seen.items()))} |"
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
