"""Memory of a served process receiving oversize JSON reports sent chunked (no Content-Length).

    .venv/bin/python -m benchmarks.bench_oversize_bodies [--reports 10] [--mib 48] [--source DIR]

`gridmap serve` (one process) on an empty migrated database of its own; this process sends
--reports POST /cases at once, each a JSON body of --mib MiB in 1 MiB chunks, and prints each
answer's status and the server's resident memory before and its peak after (VmRSS, VmHWM). With
the limit enforced while reading, each report is refused after 64 KiB; read whole first, each is
held in memory. --source runs the server from another checkout (e.g. a worktree of main, to compare).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx

from benchmarks.bench_postgis import database, free_port, say, wait_until_up
from geo.settings import Settings

CHUNK = 1024 * 1024


def memory_mib(pid: int) -> dict[str, float]:
    """The process's resident memory now and at its peak, MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {k: int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM")}


async def chunks(mib: int):
    """A JSON report whose description goes on for `mib` MiB."""
    yield b'{"lon": 114.9, "lat": 33.43, "category": "0101", "description": "'
    for _ in range(mib):
        yield b"x" * CHUNK
    yield b'"}'


async def send_all(base: str, reports: int, mib: int) -> list[str]:
    """POST the reports at once; each answer's status (or the error that ended it)."""
    async with httpx.AsyncClient(timeout=120) as client:

        async def one() -> str:
            try:
                answer = await client.post(
                    f"{base}/cases", content=chunks(mib), headers={"content-type": "application/json"}
                )
                return str(answer.status_code)
            except httpx.HTTPError as error:  # the server answered and closed before the upload ended
                return type(error).__name__

        return await asyncio.gather(*(one() for _ in range(reports)))


def main() -> None:
    """Serve, measure, send, measure."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reports", type=int, default=10)
    parser.add_argument("--mib", type=int, default=48)
    parser.add_argument("--source", default=str(Path(__file__).resolve().parent.parent))
    args = parser.parse_args()
    url = database("gridmap_bench_bodies", Settings(database_url=None))
    port = free_port()
    env = {**os.environ, "GRIDMAP_DATABASE_URL": url, "GRIDMAP_BACKGROUND_JOBS": "false", "GRIDMAP_DEMO": "1"}
    command = [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(command, env=env, cwd=args.source, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, server)
        before = memory_mib(server.pid)
        say(f"sending {args.reports} chunked reports of {args.mib} MiB at once to {args.source} ...")
        statuses = asyncio.run(send_all(base, args.reports, args.mib))
        after = memory_mib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"answers: {sorted(statuses)}")
    print(f"server resident memory: {before['VmRSS']:.0f} MiB before, peak {after['VmHWM']:.0f} MiB during")
    print(f"machine load (1, 5, 15 min): {os.getloadavg()}")


if __name__ == "__main__":
    main()
