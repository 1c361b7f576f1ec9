"""The map's first view for a province dispatcher in headless Chromium (issue 19 §2: ≤ 3 s, ≤ 1.5 MB).

    .venv/bin/python -m benchmarks.bench_first_view [--database gridmap_bench_tiles_full] [--cases 5000]

Serves the app with uvicorn on a free port of 127.0.0.1 over a database bench_tiles loaded (the
synthetic province at 400,000 grids by default), adds a dispatcher of the province (and, with
`--cases`, that many open cases spread over the province: /map/cases sends at most 5,000), signs
in through /auth/login and opens /map in Debian's chromium at 1280×800, three times: a cold
server (no tile cached), then warm. Prints the seconds until every default layer has drawn
(`GridMap.readyAt`), the bytes received (compressed, headers included) per kind of request, and
the machine's load (a shared machine: not quiet-machine figures). The page asks /map/cases for its
box and zoom (clusters far out, docs/map.md); for comparison, the full list of the view's open cases
(`GET /map/cases` without them, what the page asked for before) is timed at the same server.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import threading
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import uvicorn
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright
from pydantic import SecretStr
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from access.roles import Role
from api.app import create_app
from benchmarks.bench_intake import cpu_times, machine_share
from benchmarks.bench_postgis import reused, say
from cases.model import Intake, Reporter
from geo.settings import Settings
from services import intake as intake_service
from store import cases as case_store
from store import users
from store.engine import SERVICE_CONNECT_ARGS

CHROMIUM = Path(os.environ.get("GRIDMAP_CHROMIUM", "/usr/bin/chromium"))
PASSWORD = "bench-first-view"
USER = "bench.province.dispatcher"


def prepare(url: str, settings: Settings, cases: int) -> None:
    """A dispatcher of the top unit, and open cases up to `cases` at random grids' centres."""
    engine = create_engine(url)
    with Session(engine) as session, session.begin():
        top = session.execute(text("SELECT min(code) FROM units WHERE parent_code IS NULL")).scalar_one()
        if USER not in users.usernames(session):
            users.add_user(session, USER, PASSWORD, Role.DISPATCHER, top, None)
        have = session.execute(text("SELECT count(*) FROM cases")).scalar_one()
        missing = max(0, cases - have)
        if missing:
            points = session.execute(
                text("""SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM unit_versions
                        WHERE length(code) = 15 AND kind <> 'special' AND valid_to IS NULL
                        ORDER BY md5(code) LIMIT :n) s"""),
                {"n": missing},
            ).all()
            rules = case_store.Rules.load(settings)
            say(f"  adding {len(points):,} open cases ...")
            rng = random.Random(19)
            reporter = Reporter("王五", "13812345678")
            for lon, lat in points:
                text_ = f"第{rng.randrange(10**6)}号 路灯不亮"
                intake = Intake(lon, lat, "wgs84", lon, lat, 5.0, "report", "0101", text_, reporter=reporter)
                intake_service.create_case(session, intake, rules, actor="bench")
    engine.dispose()


def serve(url: str, settings: Settings) -> tuple[uvicorn.Server, str]:
    """uvicorn in a thread on a free port; (server, base URL)."""
    engine = create_engine(url, pool_size=10, max_overflow=10, connect_args=SERVICE_CONNECT_ARGS)
    secret = SecretStr("bench-" + "x" * 40)
    served = settings.model_copy(update={"database_url": url, "background_jobs": False, "secret_key": secret})
    app = create_app(served, engine=engine)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, log_level="warning", access_log=False))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{sock.getsockname()[1]}"


def kind_of(path: str) -> str:
    """What a request was for, to total the bytes by."""
    for prefix, kind in (("/map/tiles/", "tiles"), ("/map/cases", "cases"), ("/map/labels", "labels"),
                         ("/static/", "scripts and styles"), ("/map", "page")):  # fmt: skip
        if path.startswith(prefix):
            return kind
    return "other"


def _took(url: str, started: dict[str, float]) -> None:
    """Print how long a request took (slow requests are what a first view waits for)."""
    say(f"    {time.monotonic() - started.get(url, time.monotonic()):6.2f} s {urlsplit(url).path}")


def first_view(base: str, runs: int) -> list[dict]:
    """Open /map `runs` times in new browser contexts; seconds and bytes of each."""
    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        for _ in range(runs):
            context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 800})
            form = {"username": USER, "password": PASSWORD, "next": "/"}
            answer = context.request.post("/auth/login", form=form, max_redirects=0)
            assert answer.status == 303, answer.status
            page = context.new_page()
            sizes: dict[str, int] = defaultdict(int)
            count = [0]

            def done(request, sizes=sizes, count=count) -> None:
                s = request.sizes()
                sizes[kind_of(urlsplit(request.url).path)] += s["responseBodySize"] + s["responseHeadersSize"]
                count[0] += 1

            page.on("requestfinished", done)
            started: dict[str, float] = {}
            page.on("request", lambda r, started=started: started.setdefault(r.url, time.monotonic()))
            page.on("requestfinished", lambda r, started=started: _took(r.url, started))
            before = cpu_times()
            page.goto("/map")
            try:
                page.wait_for_selector("body[data-ready='true']", timeout=120_000)
            except PlaywrightTimeout:
                page.screenshot(path=str(Path("test-artifacts") / "bench-first-view-timeout.png"))
                raise
            seconds = page.evaluate("GridMap.readyAt") / 1000
            page.wait_for_load_state("networkidle")
            zoom = page.evaluate("GridMap.map.getZoom()")
            out.append({"seconds": seconds, "bytes": dict(sizes), "requests": count[0], "zoom": zoom,
                        "machine": machine_share(before, cpu_times())})  # fmt: skip
            page.screenshot(path=str(Path("test-artifacts") / "bench-first-view-province.png"))
            context.close()
        browser.close()
    return out


def full_list(base: str, runs: int = 3) -> list[tuple[float, int, int]]:
    """The view's whole list of open cases, as the page asked before clusters: (seconds, bytes
    gzipped as sent, bytes of JSON) per request, signed in as the dispatcher."""
    out = []
    with httpx.Client(base_url=base, timeout=120, headers={"Accept-Encoding": "gzip"}) as client:
        signed = client.post("/auth/token", data={"username": USER, "password": PASSWORD})
        client.headers["Authorization"] = f"Bearer {signed.json()['access_token']}"
        for _ in range(runs):
            started = time.monotonic()
            answer = client.get("/map/cases")
            assert answer.status_code == 200, answer.text
            out.append((time.monotonic() - started, answer.num_bytes_downloaded, len(answer.content)))
    return out


def main() -> None:
    """Prepare, serve, open the map, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="gridmap_bench_tiles_full")
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    settings = Settings(database_url=None)
    url = reused(args.database, settings)
    if url is None:
        raise SystemExit(f"no database {args.database}: run benchmarks.bench_tiles first")
    prepare(url, settings, args.cases)
    Path("test-artifacts").mkdir(exist_ok=True)
    server, base = serve(url, settings)
    try:
        runs = first_view(base, args.runs)
        whole = full_list(base)
    finally:
        server.should_exit = True
    print(f"\nFirst view of /map for a province dispatcher, {args.database} (1280x800, headless chromium)")
    for n, r in enumerate(runs, 1):
        total = sum(r["bytes"].values())
        parts = ", ".join(f"{k} {v / 1024:.0f} KB" for k, v in sorted(r["bytes"].items()))
        print(f"run {n} ({'cold' if n == 1 else 'warm'}): {r['seconds']:.2f} s, {total / 1024:.0f} KB in "
              f"{r['requests']} requests at zoom {r['zoom']} ({parts}); {r['machine']}")  # fmt: skip
    for n, (seconds, sent, raw) in enumerate(whole, 1):
        print(f"full list of the open cases (GET /map/cases, no box: the page before clusters), request {n}: "
              f"{seconds:.2f} s, {sent / 1024:.0f} KB gzipped ({raw / 1024:.0f} KB JSON)")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (a shared machine if > 1)")


if __name__ == "__main__":
    main()
