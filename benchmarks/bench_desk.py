"""The dispatcher's workbench with 10,000 open cases in the county: first view in headless
chromium, a filter change and a move round trip.

    .venv/bin/python -m benchmarks.bench_desk [--cases 10000] [--reuse] [--rounds 60]

A database of its own (`gridmap_bench_desk`: demo county, demo users, --cases cases stored
through the intake's store function, their clocks spread so that some are yellow, red and
overdue) served by `gridmap serve` in a separate process (one worker). Figures:

- first view: Debian's chromium, signed in as the demo `dispatcher` (county), opens /desk with an
  empty cache; time to DOMContentLoaded (the queue is server-rendered: usable from here) and to
  interactive (the map fitted to the unit drew its tiles and the queue page's cases), and bytes
  transferred (compressed, from the DevTools
  protocol's encodedDataLength);
- filter change: what the page's filter form sends (htmx GET /desk with the filters), at the
  server (Server-Timing) and at the client, over --rounds filters;
- move round trip: a move submitted from the case's form (POST /desk/cases/{id}/moves), answered
  with the case panel re-rendered, over --rounds cases;
- for comparison, what a client of the API would ask instead: GET /cases with the same filters
  (no counts per group, newest first instead of by urgency).

Service, PostgreSQL, chromium and this process share the machine's cores: the load and the
hypervisor's steal are printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time

import httpx
import numpy as np
from playwright.sync_api import sync_playwright
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from benchmarks.bench_intake import cpu_times, demo_points, machine_share
from benchmarks.bench_postgis import database, free_port, reused, say, wait_until_up
from cases.lifecycle import Source
from cases.model import Intake, Reporter
from geo.demo import DEMO_PASSWORD
from geo.settings import Settings
from services import intake as intake_service
from services.imports import load_demo
from store import cases as store

CATEGORIES = ["0101", "0102", "0103", "0201", "0301", "0401", "0801", "1101"]
CHROMIUM = os.environ.get("GRIDMAP_CHROMIUM", "/usr/bin/chromium")
FILTERS = [
    "group=verify",
    "light=red",
    "overdue=true",
    "category=01",
    "group=verify&light=yellow",
    "q=垃圾",
    "source=hotline_12345",
    "unit=411681001",
    "group=verify&page=3",
    "",
]


def load_cases(url: str, settings: Settings, n: int) -> None:
    """n reported cases at points inside demo grids, stored as intake stores them, clocks spread."""
    rules = store.Rules.load(settings)
    points = demo_points(url, n, seed=11)
    rng = random.Random(5)
    engine = create_engine(url)
    batch = 500
    for start in range(0, n, batch):
        with Session(engine) as session, session.begin():
            new = [
                intake_service.NewCase(
                    Intake(
                        float(lon),
                        float(lat),
                        "wgs84",
                        float(lon),
                        float(lat),
                        10.0,
                        "report",
                        rng.choice(CATEGORIES),
                        f"第 {start + i} 号 路边有垃圾，请处理",
                        source=rng.choice(list(Source)),
                        address=f"项城市 人民路 {start + i} 号",
                        reporter=Reporter("李四", "13812345678"),
                    ),
                    "bench",
                )
                for i, (lon, lat) in enumerate(points[start : start + batch])
            ]
            intake_service.create_cases(session, new, rules)
        say(f"  {min(start + batch, n):,} cases stored")
    with Session(engine) as session, session.begin():
        # Spread the clocks over the last and next days: green, yellow, red and overdue cases.
        spread = "now() + (random() * 72 - 24) * interval '1 hour'"
        session.execute(text(f"UPDATE cases SET stage_due_at = {spread}"))
        # Yellow before due, as the clocks set it (at 80 % of a stage of up to ten hours here).
        session.execute(text("UPDATE cases SET stage_yellow_at = stage_due_at - random() * interval '2 h'"))
    engine.dispose()


def first_view(base: str) -> dict:
    """Chromium with an empty cache: sign in, open /desk; times and compressed bytes."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
        page = context.new_page()
        page.goto(f"{base}/login?next=/desk")
        page.get_by_label("用户名").fill("dispatcher")
        page.get_by_label("密码").fill(DEMO_PASSWORD)
        with page.expect_navigation():
            page.get_by_label("密码").press("Enter")
        # Then a cold-cache load of the workbench itself (the session cookie stays; the login page
        # and its redirect are not the workbench's).
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.clearBrowserCache")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        sizes: dict[str, int] = {}
        cdp.on("Network.loadingFinished", lambda e: sizes.__setitem__(e["requestId"], e["encodedDataLength"]))
        finished: list[tuple[float, str]] = []
        page.on(
            "requestfinished",
            lambda r: finished.append((r.timing["responseEnd"], r.url.replace(base, ""))),
        )
        start = time.perf_counter()
        page.goto(f"{base}/desk", wait_until="domcontentloaded")
        dom = time.perf_counter() - start
        page.wait_for_selector("body[data-ready=true]", timeout=60_000)
        ready = time.perf_counter() - start
        rows = page.locator("#queue tr[data-case-id]").count()
        count = page.locator('[data-count="open"]').inner_text()
        page.wait_for_timeout(1500)  # tiles still arriving after ready count too
        browser.close()
    slowest = ", ".join(
        f"{path.split('?')[0]} {ms:.0f} ms" for ms, path in sorted(finished, reverse=True)[:3]
    )
    return {"dom_s": dom, "ready_s": ready, "slowest": slowest, "bytes": sum(sizes.values()),
            "requests": len(sizes), "rows": rows, "open": count}  # fmt: skip


def timed(client: httpx.Client, method: str, path: str, **kw) -> tuple[float, float, int]:
    """(client ms, server ms from Server-Timing, status)."""
    start = time.perf_counter()
    answer = client.request(method, path, **kw)
    took = (time.perf_counter() - start) * 1000
    server = float(answer.headers.get("server-timing", "app;dur=nan").split("dur=")[1])
    return took, server, answer.status_code


def p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def report_line(name: str, samples: list[tuple[float, float, int]]) -> str:
    client = [s[0] for s in samples]
    server = [s[1] for s in samples]
    bad = [s[2] for s in samples if s[2] >= 400]
    return (
        f"{name:<34} server p50 {p(server, 50):6.1f} ms  p95 {p(server, 95):6.1f} ms   "
        f"client p50 {p(client, 50):6.1f} ms  p95 {p(client, 95):6.1f} ms   n={len(samples)}"
        + (f"  errors {bad}" if bad else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--reuse", action="store_true", help="keep the database of an earlier run")
    args = parser.parse_args()
    settings = Settings(database_url=None)
    name = "gridmap_bench_desk"
    url = reused(name, settings) if args.reuse else None
    if url is None:
        url = database(name, settings)
        with Session(create_engine(url)) as session, session.begin():
            load_demo(session, settings, progress=say)
        say(f"storing {args.cases:,} cases ...")
        load_cases(url, settings, args.cases)
    port = free_port()
    env = {**os.environ, "GRIDMAP_DATABASE_URL": url, "GRIDMAP_BACKGROUND_JOBS": "false", "GRIDMAP_DEMO": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    before = cpu_times()
    try:
        wait_until_up(base, server)
        say("first view in chromium ...")
        view = first_view(base)
        login = httpx.post(f"{base}/auth/token", data={"username": "dispatcher", "password": DEMO_PASSWORD})
        auth = {"Authorization": f"Bearer {login.json()['access_token']}", "HX-Request": "true"}
        with httpx.Client(base_url=base, headers=auth, timeout=30) as client:
            for f in FILTERS:  # warm up
                client.get(f"/desk?{f}")
            say(f"{args.rounds} filter changes, {args.rounds} moves ...")
            filters = [timed(client, "GET", f"/desk?{FILTERS[i % len(FILTERS)]}") for i in range(args.rounds)]
            api = [
                timed(
                    client,
                    "GET",
                    f"/cases?{FILTERS[i % len(FILTERS)].replace('group=verify', 'status=reported')}",
                )
                for i in range(args.rounds)
            ]
            ids = client.get("/queue?group=verify&size=500").json()["items"]
            targets = [c["id"] for c in ids[: args.rounds]]
            moves = [
                timed(
                    client,
                    "POST",
                    f"/desk/cases/{case_id}/moves",
                    data={"to": "verified", "from": "reported"},
                )
                for case_id in targets
            ]
    finally:
        server.terminate()
        server.wait(timeout=20)
    during = machine_share(before, cpu_times())
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"cases in the county: {args.cases:,} open; queue rows on the first page: {view['rows']},"
          f" open count shown: {view['open']}")  # fmt: skip
    print(
        f"/desk first view (cold cache, chromium): DOMContentLoaded {view['dom_s']:.2f} s, "
        f"interactive (map tiles and cases drawn) {view['ready_s']:.2f} s, "
        f"{view['bytes'] / 1024:.0f} KB transferred in {view['requests']} requests   (target ≤ 2 s, ≤ 500 KB)"
    )
    print(f"  slowest requests of the first view: {view['slowest']}")
    print(report_line("filter change (GET /desk, htmx)", filters) + "   (target p95 ≤ 300 ms at the server)")
    print(report_line("move round trip (POST .../moves)", moves) + "   (target p95 ≤ 300 ms)")
    print(report_line("for comparison: GET /cases", api))
    print(f"during the run: {during}; load average {' '.join(load)} (2 cores)")
    print("a shared machine, busy with other engineers' work meanwhile: not quiet-machine figures")


if __name__ == "__main__":
    main()
