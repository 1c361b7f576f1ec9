"""The command dashboard with 10,000 cases in the demo county: first view in headless chromium, and
the server time of its JSON (GET /stats/dashboard).

    .venv/bin/python -m benchmarks.bench_dashboard [--cases 10000] [--closed 2000] [--views 5] [--reuse]

A database of its own (`gridmap_bench_dashboard`): the demo county, `--cases` cases stored by the
intake's own function (services.intake.create_cases) at points inside random demo grids, reported
over the last 45 days, `--closed` of them walked through the lifecycle to closed and revisited,
a tenth of the others overdue. `gridmap serve` (one worker) serves it; chromium (Debian's) opens
/dashboard signed in as the demo county dispatcher, a new browser context (cold cache) per view.
First view = navigation start to every figure written and every chart drawn (the page's
`DashboardReadyAt`). The JSON's server time is the `Server-Timing` header of each answer.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time

import httpx
from playwright.sync_api import sync_playwright
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from benchmarks.bench_intake import cpu_times, demo_points, machine_share
from benchmarks.bench_postgis import database, free_port, reused, say, wait_until_up
from cases.lifecycle import CaseStatus, Move, Rating
from cases.model import Intake
from geo.demo import DEMO_PASSWORD
from geo.settings import Settings
from services import cases as case_service
from services import intake as intake_service
from services.imports import load_demo
from services.intake import NewCase
from store import cases as store

NAME = "gridmap_bench_dashboard"
CATEGORIES = ["0101", "0101", "0102", "0103", "0201", "0301", "0401", "0501"]
WALK = ["verified", "filed", "dispatched", "accepted", "in_progress", "handled", "checked", "closed"]
CHROMIUM = os.environ.get("GRIDMAP_CHROMIUM", "/usr/bin/chromium")


def load_cases(url: str, settings: Settings, n: int, closed: int) -> None:
    """n cases at demo points, spread over 45 days; `closed` of them closed and revisited."""
    rules = store.Rules.load(settings)
    rng = random.Random(14)
    points = demo_points(url, n)
    engine = create_engine(url)
    with Session(engine) as session, session.begin():
        for start in range(0, n, 500):
            batch = [
                NewCase(Intake(lon, lat, "wgs84", lon, lat, 8.0, "report", rng.choice(CATEGORIES),
                               f"bench {start + i}"), actor="bench")
                for i, (lon, lat) in enumerate(points[start:start + 500])
            ]  # fmt: skip
            intake_service.create_cases(session, batch, rules)
            say(f"  {start + len(batch):,} cases")
        ids = list(session.execute(text("SELECT id FROM cases ORDER BY id")).scalars())
        for k, case_id in enumerate(ids[:closed]):
            for to in WALK:
                case_service.move_case(session, case_id, Move(CaseStatus(to)), rules, actor="bench")
            rating = rng.choice(
                [Rating.SATISFIED, Rating.SATISFIED, Rating.BASICALLY_SATISFIED, Rating.UNSATISFIED]
            )
            case_service.move_case(
                session, case_id, Move(CaseStatus.REVISITED, rating=rating), rules, actor="bench"
            )
            if k % 500 == 499:
                say(f"  {k + 1:,} cases walked to closed")
        # Reported over the last 45 days (the history keeps its own times); a tenth overdue.
        last_closed = ids[closed - 1] if closed else 0
        session.execute(
            text("UPDATE cases SET reported_at = now() - random() * interval '45 days' WHERE id > :last"),
            {"last": last_closed},
        )
        session.execute(
            text(
                "UPDATE cases SET stage_yellow_at = now() - interval '2 hours', "
                "stage_due_at = now() - interval '1 hour' WHERE id % 10 = 0 AND closed_at IS NULL"
            )
        )
    engine.dispose()


def first_views(base: str, views: int) -> list[float]:
    """Seconds from navigation to the dashboard drawn, one cold browser context each."""
    took = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for _ in range(views):
            context = browser.new_context(viewport={"width": 1920, "height": 1080}, base_url=base)
            login = {"username": "dispatcher", "password": DEMO_PASSWORD, "next": "/"}
            context.request.post("/auth/login", form=login, max_redirects=0)
            page = context.new_page()
            page.goto("/dashboard")
            page.wait_for_selector("body[data-ready=true]", state="attached", timeout=60_000)
            took.append(page.evaluate("window.DashboardReadyAt") / 1000)
            context.close()
        browser.close()
    return took


def server_times(base: str, unit: str, n: int) -> list[float]:
    """Milliseconds in the app per GET /stats/dashboard?unit= (its Server-Timing header)."""
    login = httpx.post(f"{base}/auth/token", data={"username": "dispatcher", "password": DEMO_PASSWORD})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    times = []
    for _ in range(n):
        answer = httpx.get(f"{base}/stats/dashboard", params={"unit": unit}, headers=headers, timeout=60)
        answer.raise_for_status()
        times.append(float(answer.headers["server-timing"].split("dur=")[1]))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--closed", type=int, default=2_000)
    parser.add_argument("--views", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--reuse", action="store_true", help="use the database an earlier run loaded")
    args = parser.parse_args()
    settings = Settings(database_url=None)
    url = reused(NAME, settings) if args.reuse else None
    if url is None:
        url = database(NAME, settings)
        with Session(create_engine(url)) as session, session.begin():
            load_demo(session, settings, progress=say)
        started = time.monotonic()
        load_cases(url, settings, args.cases, args.closed)
        say(f"loaded in {time.monotonic() - started:.0f} s")
    with create_engine(url).connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM cases")).scalar_one()
    port = free_port()
    env = {**os.environ, "GRIDMAP_DATABASE_URL": url, "GRIDMAP_BACKGROUND_JOBS": "false", "GRIDMAP_DEMO": "1"}
    command = [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--workers", "1",
               "--log-level", "warning"]  # fmt: skip
    server = subprocess.Popen(command, env=env, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, server)
        server_times(base, "411681", 2)  # warm: plans, pools
        before = cpu_times()
        county = server_times(base, "411681", args.requests)
        street = server_times(base, "411681001", args.requests)
        views = first_views(base, args.views)
        during = machine_share(before, cpu_times())
    finally:
        server.terminate()
        server.wait(timeout=20)
    load = os.getloadavg()

    def spread(ms: list[float]) -> str:
        q = statistics.quantiles(ms, n=20)
        return f"p50 {statistics.median(ms):.0f} ms, p95 {q[18]:.0f} ms, max {max(ms):.0f} ms"

    print(f"cases in the database: {total:,} ({args.closed:,} closed and revisited)")
    print(f"/dashboard first view, 1920x1080, cold context ({len(views)} views): "
          f"median {statistics.median(views):.2f} s, max {max(views):.2f} s  (target <= 3 s)")  # fmt: skip
    print(f"GET /stats/dashboard server time, county (21 streets): {spread(county)}")
    print(f"GET /stats/dashboard server time, street 411681001: {spread(street)}")
    print(f"during the run: {during}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          "(a shared machine: not quiet-machine figures)")  # fmt: skip


if __name__ == "__main__":
    main()
