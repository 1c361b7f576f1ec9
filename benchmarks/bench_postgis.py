"""Assignment inside PostGIS and /locate latency, for the demo county and a 100,000-grid partition.

    .venv/bin/python -m benchmarks.bench_postgis [--points 1000000] [--grids 100000] [--requests 3000]
        [--reuse] [--no-bulk] [--no-locate]

For each dataset (own database in the embedded cluster, or GRIDMAP_BENCH_DATABASE_URL prefix):
  1. bulk assignment of N points inside PostGIS: a plain `ST_Covers` join on the grid polygons
     against `assign_points_table` for the current grids (the stored grid raster; its build is
     timed apart) and as of a date (subdivided pieces), checking all three give the same answers;
  2. single /locate latency, measured at the server (Server-Timing header) and at the client,
     with the API served by uvicorn in a separate process (after its in-memory copy of the grids
     is built: it waits --cache-wait seconds).
`--reuse` keeps databases loaded by an earlier run; `--no-bulk` / `--no-locate` skip a part.
Prints a table; nothing here is a test.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import shapely
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from benchmarks.partition import make_partition
from geo.codes import Level, ancestor_codes
from geo.settings import Settings
from geo.validation import UnitFeature
from services.imports import load_demo
from store.cluster import EmbeddedCluster
from store.grid_raster import current_raster
from store.locate import _precedence_sql, assign_points_table
from store.migrate import upgrade
from store.units import write_units

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def say(message: str) -> None:
    """Progress on stderr."""
    print(message, file=sys.stderr, flush=True)


def database(name: str, settings: Settings) -> str:
    """A fresh, migrated database for one dataset."""
    prefix = os.environ.get("GRIDMAP_BENCH_DATABASE_URL")
    if prefix:  # a server of your own: postgresql+psycopg://user:pw@host:port (no database)
        url = prefix.rstrip("/") + "/" + name
        admin = create_engine(prefix.rstrip("/") + "/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    else:
        cluster = EmbeddedCluster(settings)
        cluster.start(progress=say)
        cluster.drop_database(name)
        cluster.create_database(name)
        url = cluster.url().rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    return url


def reused(name: str, settings: Settings) -> str | None:
    """The URL of a database an earlier run loaded (migrated to the current heads), else None."""
    cluster = EmbeddedCluster(settings)
    cluster.start(progress=say)
    url = cluster.url().rsplit("/", 1)[0] + "/" + name
    try:
        with create_engine(url).connect() as conn:
            if not conn.execute(text("SELECT EXISTS (SELECT 1 FROM unit_versions)")).scalar_one():
                return None
    except Exception:  # no such database (yet)
        return None
    upgrade(url)
    return url


def load_partition(url: str, n_grids: int) -> shapely.Geometry:
    """Store a synthetic partition (bypassing validation: it is generated clean); returns its bounds."""
    frame = make_partition(n_grids, seed=7, removed_share=0.01, special_share=0.01)
    # From the county down: the partition is one county, stored without a city or province above it.
    parents = sorted({a for code in frame["code"] for a in ancestor_codes(code) if len(a) >= 6})
    features = [
        UnitFeature(
            code=c,
            name=f"网格{c[-6:]}",
            level=Level.GRID,
            geometry=g,
            kind=k,
            special_type="school" if k == "special" else None,
        )
        for c, k, g in zip(frame["code"], frame["kind"], _multi(frame.geometry.values), strict=True)
    ]
    engine = create_engine(url)
    with Session(engine) as session, session.begin():
        session.execute(
            text("INSERT INTO units (code, level, parent_code) VALUES (:c, :l, :p)"),
            [
                {
                    "c": c,
                    "l": {6: "county", 9: "street", 12: "community"}[len(c)],
                    "p": c[:-3] if len(c) > 6 else None,
                }
                for c in parents
            ],
        )
        write_units(session, features, valid_from=T0)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return shapely.box(*frame.total_bounds)


def _multi(geometries: np.ndarray) -> list:
    import shapely

    return [g if g.geom_type == "MultiPolygon" else shapely.MultiPolygon([g]) for g in geometries]


def load_points(session: Session, lon: np.ndarray, lat: np.ndarray) -> None:
    """Points into an unlogged table via COPY (fast)."""
    session.execute(text("DROP TABLE IF EXISTS bench_points"))
    session.execute(
        text("CREATE UNLOGGED TABLE bench_points (id bigint PRIMARY KEY, geom geometry(Point, 4490))")
    )
    raw = session.connection().connection.dbapi_connection
    with raw.cursor() as cur, cur.copy("COPY bench_points (id, geom) FROM STDIN") as copy:
        for i, (x, y) in enumerate(zip(lon, lat, strict=True)):
            copy.write_row((i, f"SRID=4490;POINT({float(x)!r} {float(y)!r})"))
    session.execute(text("ANALYZE bench_points"))


def plain_join(session: Session) -> float:
    """The baseline: ST_Covers against the whole grid polygons in a table of their own with a GiST
    index (what a straightforward schema does); returns the seconds of the join alone."""
    session.execute(
        text(
            """CREATE TEMP TABLE plain_grids AS
               SELECT v.code, v.kind, v.geom FROM unit_versions v JOIN units u USING (code)
               WHERE u.level = 'grid' AND v.valid_to IS NULL;
               CREATE INDEX ON plain_grids USING gist (geom);
               ANALYZE plain_grids"""
        )
    )
    t0 = time.perf_counter()
    session.execute(
        text(
            f"""CREATE TEMP TABLE plain_assignments AS
                SELECT DISTINCT ON (pt.id) pt.id, g.code AS grid_code
                FROM bench_points pt JOIN plain_grids g ON ST_Covers(g.geom, pt.geom)
                ORDER BY pt.id, {_precedence_sql("g.kind")}, g.code"""
        )
    )
    return time.perf_counter() - t0


def bench_bulk(url: str, n_points: int, area: shapely.Geometry) -> dict[str, float]:
    """Time the plain join and assign_points_table on the same points: 98 % inside `area`
    (cases happen where people live), 2 % anywhere in its bounding box widened by 1 km."""
    rng = np.random.default_rng(11)
    minx, miny, maxx, maxy = area.bounds
    inside_x, inside_y = np.empty(0), np.empty(0)
    while len(inside_x) < n_points * 0.98:
        x, y = rng.uniform(minx, maxx, n_points), rng.uniform(miny, maxy, n_points)
        keep = shapely.contains_xy(area, x, y)
        inside_x, inside_y = np.concatenate([inside_x, x[keep]]), np.concatenate([inside_y, y[keep]])
    n_in = int(n_points * 0.98)
    rest = n_points - n_in
    lon = np.concatenate([inside_x[:n_in], rng.uniform(minx - 0.01, maxx + 0.01, rest)])
    lat = np.concatenate([inside_y[:n_in], rng.uniform(miny - 0.01, maxy + 0.01, rest)])
    engine = create_engine(url)
    figures: dict[str, float] = {}
    with Session(engine) as session, session.begin():
        say(f"  loading {n_points:,} points ...")
        load_points(session, lon, lat)
    # Committed and vacuumed, as a table of cases would be: rows the reading transaction wrote
    # itself cost every method more to scan.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE bench_points"))
    with Session(engine) as session, session.begin():
        # Both joins on one core: the ratio compares methods, not PostgreSQL's parallel workers.
        session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
        say("  grid raster (built once per boundary change) ...")
        raster = current_raster(session, tolerance_m=30, progress=lambda m: say(f"    {m}"))
        figures["raster_build_s"] = raster.build_seconds
        figures["edge_share"] = raster.edge_share
        say("  plain ST_Covers join ...")
        figures["plain_s"] = plain_join(session)
        say("  assign_points_table, current grids (grid raster, rule incl. snapping) ...")
        t0 = time.perf_counter()
        counts = assign_points_table(session, "bench_points", tolerance_m=30)
        figures["raster_s"] = time.perf_counter() - t0
        session.execute(text("ALTER TABLE point_assignments RENAME TO raster_assignments"))
        say("  assign_points_table, grids as of a date (pieces probe a GiST index on the points) ...")
        t0 = time.perf_counter()
        assign_points_table(session, "bench_points", tolerance_m=30, at=datetime.now(UTC))
        figures["pieces_s"] = time.perf_counter() - t0
        figures["agree"] = float(agree(session))
        figures.update({f"n_{k}": float(v) for k, v in counts.items()})
    engine.dispose()
    for method in ("plain", "raster", "pieces"):
        figures[f"{method}_pts_s"] = n_points / figures[f"{method}_s"]
    return figures


def agree(session: Session) -> bool:
    """Whether the raster's answers equal the plain join's grid for every covered point, and the
    piece join's answer (status, grid, snap distance to 1 µm) for every point."""
    with_plain = session.execute(
        text(
            """SELECT count(*) FROM plain_assignments p
               FULL JOIN (SELECT * FROM raster_assignments WHERE status = 'assigned') a USING (id)
               WHERE p.grid_code IS DISTINCT FROM a.grid_code"""
        )
    ).scalar_one()
    with_pieces = session.execute(
        text(
            """SELECT count(*) FROM raster_assignments r FULL JOIN point_assignments p USING (id)
               WHERE r.status IS DISTINCT FROM p.status OR r.grid_code IS DISTINCT FROM p.grid_code
                  OR abs(r.distance_m - p.distance_m) > 1e-6"""
        )
    ).scalar_one()
    if with_plain or with_pieces:
        say(f"  DISAGREEMENT: {with_plain} with the plain join, {with_pieces} with the piece join")
    return with_plain == with_pieces == 0


def free_port() -> int:
    """A port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(base: str, process: subprocess.Popen, timeout_s: float = 60) -> None:
    """Until the server at `base` answers /health; fails if its process ends first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            httpx.get(base + "/health", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"the server at {base} did not answer within {timeout_s:g} s")


def bench_locate(
    url: str, bounds: tuple[float, float, float, float], requests: int, cache_wait_s: float
) -> dict[str, float]:
    """p50/p99 of /locate at the server (Server-Timing) and at the client, one uvicorn process."""
    port = free_port()
    env = {**os.environ, "GRIDMAP_DATABASE_URL": url, "GRIDMAP_DEMO": "1", "GRIDMAP_BACKGROUND_JOBS": "false"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.app:create_app",
            "--factory",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, server)
        time.sleep(cache_wait_s)  # the server builds its copy of the grids in the background
        rng = np.random.default_rng(5)
        lon = rng.uniform(bounds[0], bounds[2], requests)
        lat = rng.uniform(bounds[1], bounds[3], requests)
        server_ms, client_ms = [], []
        with httpx.Client(base_url=base) as client:
            for i in range(requests + 200):
                k = i % requests
                t0 = time.perf_counter()
                response = client.get("/locate", params={"lon": lon[k], "lat": lat[k]})
                took = (time.perf_counter() - t0) * 1000
                response.raise_for_status()
                if i >= 200:  # the first requests warm caches and the connection pool
                    client_ms.append(took)
                    server_ms.append(float(response.headers["server-timing"].split("=")[1]))
    finally:
        server.terminate()
        server.wait(10)
    return {
        "server_p50": float(np.percentile(server_ms, 50)),
        "server_p99": float(np.percentile(server_ms, 99)),
        "client_p50": float(np.percentile(client_ms, 50)),
        "client_p99": float(np.percentile(client_ms, 99)),
    }


def main() -> None:
    """Run both datasets and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--grids", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=3_000)
    parser.add_argument("--reuse", action="store_true", help="reuse databases loaded by an earlier run")
    parser.add_argument("--no-bulk", action="store_true", help="measure /locate only")
    parser.add_argument("--no-locate", action="store_true", help="measure bulk assignment only")
    parser.add_argument("--cache-wait", type=float, default=30.0, help="seconds for the server's copy")
    args = parser.parse_args()
    settings = Settings(database_url=None)
    rows = []

    say("demo county: loading ...")
    url = reused("gridmap_bench_demo", settings) if args.reuse else None
    if url is None:
        url = database("gridmap_bench_demo", settings)
        with Session(create_engine(url)) as session, session.begin():
            load_demo(session, settings, progress=say)
    with Session(create_engine(url)) as session:
        county = session.execute(text("SELECT ST_AsBinary(geom) FROM unit_versions WHERE code = '411681'"))
        demo_area = shapely.from_wkb(bytes(county.scalar_one()))
    rows.append(
        (
            "demo county (2,619 grids)",
            None if args.no_bulk else bench_bulk(url, args.points, demo_area),
            None if args.no_locate else bench_locate(url, demo_area.bounds, args.requests, args.cache_wait),
        )
    )

    say(f"{args.grids:,}-grid partition: generating and loading ...")
    url = reused("gridmap_bench_partition", settings) if args.reuse else None
    if url is None:
        url = database("gridmap_bench_partition", settings)
        t0 = time.perf_counter()
        area = load_partition(url, args.grids)
        say(f"  loaded in {time.perf_counter() - t0:.0f} s")
    else:
        with Session(create_engine(url)) as session:
            extent = session.execute(
                text("SELECT ST_AsBinary(ST_Envelope(ST_Extent(geom))) FROM unit_parts WHERE level = 'grid'")
            )
            area = shapely.from_wkb(bytes(extent.scalar_one()))
    rows.append(
        (
            f"partition ({args.grids:,} grids)",
            None if args.no_bulk else bench_bulk(url, args.points, area),
            None if args.no_locate else bench_locate(url, area.bounds, args.requests, args.cache_wait),
        )
    )

    print(f"\nBulk assignment of {args.points:,} points inside PostGIS (one core each)")
    print(
        f"{'dataset':<28} {'plain join':>11} {'raster':>9} {'speed-up':>9} {'pieces':>9}"
        f" {'raster build':>13} {'edge cells':>11} {'agree':>6}   (pts/s)"
    )
    for name, bulk, _ in rows:
        if bulk:
            print(
                f"{name:<28} {bulk['plain_pts_s']:>11,.0f} {bulk['raster_pts_s']:>9,.0f}"
                f" {bulk['plain_s'] / bulk['raster_s']:>8.1f}x {bulk['pieces_pts_s']:>9,.0f}"
                f" {bulk['raster_build_s']:>11.1f} s {bulk['edge_share']:>11.0%}"
                f" {'yes' if bulk['agree'] else 'NO':>6}"
            )
    if not args.no_locate:
        print(f"\n/locate latency ({args.requests} requests)")
        print(f"{'dataset':<28} {'server p50/p99 ms':>18} {'client p50/p99 ms':>18}")
    for name, _, lat in rows:
        if lat is None:
            continue
        print(
            f"{name:<28} {lat['server_p50']:>8.2f} / {lat['server_p99']:<7.2f}"
            f" {lat['client_p50']:>8.2f} / {lat['client_p99']:<7.2f}"
        )


if __name__ == "__main__":
    main()
