"""Payload sizes and generation times of the live map: per view (demo county) and per tile (both datasets).

    .venv/bin/python -m benchmarks.bench_map [--reuse] [--grids 100000]

Views: the page, the tiles its first screen needs (1280x800, 512 px tiles as the page asks for
them) and the open cases. Tiles: every 256 px tile of one zoom over the data, per zoom, generated
in-process (`store.tiles.view_tile`, i.e. the SQL the endpoint runs) with raw and gzip sizes.
The 100,000-grid partition comes from benchmarks/partition.py, loaded like bench_postgis loads it
(database `gridmap_bench_partition`, reused with --reuse).
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import time

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from access.roles import Role, User
from api.access import resolve_user
from api.app import create_app
from benchmarks.bench_postgis import database, load_partition, reused, say
from geo.codes import Level, level_of
from geo.settings import Settings
from services.imports import load_demo
from store import mapdata, tiles

VIEWPORT = (1280, 800)
EVERYTHING = {level: tiles.TileFilter() for level in Level}


def fit_zoom(bounds: tuple[float, float, float, float], viewport: tuple[int, int] = VIEWPORT) -> int:
    """The whole zoom Leaflet's fitBounds picks for `bounds` in `viewport` (zoomSnap 1)."""
    minx, miny, maxx, maxy = bounds
    for z in range(20, 0, -1):
        # A pixel of zoom z is a 256 px tile of zoom z + 8.
        x0, y0 = tiles.tile_of(minx, maxy, z + 8)
        x1, y1 = tiles.tile_of(maxx, miny, z + 8)
        if x1 - x0 <= viewport[0] and y1 - y0 <= viewport[1]:
            return z
    return 0


def tiles_over(bounds: tuple[float, float, float, float], z: int) -> list[tuple[int, int, int]]:
    """Every 256 px tile of zoom `z` touching `bounds`."""
    x0, y0 = tiles.tile_of(bounds[0], bounds[3], z)
    x1, y1 = tiles.tile_of(bounds[2], bounds[1], z)
    return [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def bench_tiles(url: str, bounds: tuple[float, float, float, float], zooms: range) -> list[dict]:
    """Per zoom: tile count, generation time (median, max) and sizes (largest raw and gzipped, total gz)."""
    rows = []
    engine = create_engine(url)
    with Session(engine) as session:
        tiles.view_tile(session, *tiles_over(bounds, zooms[0])[0], EVERYTHING)  # connection warm-up
        for z in zooms:
            todo = tiles_over(bounds, z)
            if len(todo) > 64:  # a sample of the middle: the rest is alike
                mid = len(todo) // 2
                todo = todo[mid - 32 : mid + 32]
            times, raw, packed, grids, omitted = [], [], [], 0, 0
            for t in todo:
                started = time.perf_counter()
                tile = tiles.view_tile(session, *t, EVERYTHING)
                times.append(time.perf_counter() - started)
                raw.append(len(tile.data))
                packed.append(len(gzip.compress(tile.data, 6)))
                grids = max(grids, tile.features.get("grid", 0))
                omitted += bool(tile.omitted)
            rows.append(
                {
                    "z": z,
                    "tiles": len(todo),
                    "median_ms": statistics.median(times) * 1000,
                    "max_ms": max(times) * 1000,
                    "max_kb": max(raw) / 1024,
                    "max_gz_kb": max(packed) / 1024,
                    "max_grids": grids,
                    "omitted": omitted,
                }
            )
    engine.dispose()
    return rows


def bench_views(url: str, settings: Settings) -> list[dict]:
    """Per view of the demo county: page, first-screen tiles and open cases, sizes and server times."""
    engine = create_engine(url, pool_size=5)
    update = {"database_url": url, "background_jobs": False, "secret_key": SecretStr("bench-" + "x" * 40)}
    app = create_app(settings.model_copy(update=update), engine=engine)
    # Measured as a county-wide admin: sign-in is not what this measures.
    app.dependency_overrides[resolve_user] = lambda: User(
        id=0, username="bench", role=Role.ADMIN, unit_code=""
    )
    rows = []
    with TestClient(app) as client, Session(engine) as session:
        grid = session.execute(text("SELECT min(code) FROM units WHERE level = 'grid'")).scalar_one()
        street = grid[:9]
        views = {
            "dispatcher /map": ("/map", None, ""),
            f"dispatcher /map?unit={street}": (f"/map?unit={street}", street, f"unit={street}"),
            f"field /map?grid={grid}": (f"/map?grid={grid}", grid, f"near={grid}"),
            "planner /map?view=planner": ("/map?view=planner", None, ""),
        }
        for name, (path, code, query) in views.items():
            row = {"view": name}
            row.update(_timed(client, path))
            bounds = _view_bounds(session, code)
            z = fit_zoom(bounds)
            first = tiles_over(bounds, z - 1)  # 512 px tiles at z = 256 px tiles at z-1
            took, raw, packed = [], 0, 0
            for tz, tx, ty in first:
                answer = _timed(client, f"/map/tiles/{tz + 1}/{tx}/{ty}.pbf?size=512&{query}")
                took.append(answer["server_ms"])
                raw += answer["raw"]
                packed += answer["gz"]
            cases = _timed(client, "/map/cases" + (f"?{query}" if query else ""))
            row.update(zoom=z, tiles=len(first), tiles_ms=sum(took), tiles_max_ms=max(took), tiles_raw=raw)
            row.update(tiles_gz=packed, cases_gz=cases["gz"], total_gz=row["gz"] + packed + cases["gz"])
            rows.append(row)
    engine.dispose()
    return rows


def _view_bounds(session: Session, code: str | None) -> tuple[float, float, float, float]:
    """What the page opens on, as api/routes/maps.py asks: all, a unit, or a grid and its neighbours."""
    if code is None:
        bounds = mapdata.all_bounds(session)
    elif level_of(code) == Level.GRID:
        bounds = mapdata.codes_bounds(session, mapdata.grid_neighbourhood(session, code))
    else:
        bounds = mapdata.unit_bounds(session, code)
    assert bounds is not None, code
    return bounds


def _timed(client: TestClient, path: str) -> dict:
    answer = client.get(path, headers={"Accept-Encoding": "identity"})
    assert answer.status_code == 200, (path, answer.status_code, answer.text[:200])
    server_ms = float(answer.headers["server-timing"].split("dur=")[1])
    return {"server_ms": server_ms, "raw": len(answer.content), "gz": len(gzip.compress(answer.content, 6))}


def main() -> None:
    """Load (or reuse) both datasets and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, default=100_000)
    parser.add_argument("--reuse", action="store_true", help="reuse databases loaded by an earlier run")
    args = parser.parse_args()
    settings = Settings(database_url=None)

    say("demo county ...")
    demo = reused("gridmap_bench_demo", settings) if args.reuse else None
    if demo is None:
        demo = database("gridmap_bench_demo", settings)
        with Session(create_engine(demo)) as session, session.begin():
            load_demo(session, settings, progress=say)
    views = bench_views(demo, settings)
    with Session(create_engine(demo)) as session:
        demo_bounds = _view_bounds(session, None)
    demo_tiles = bench_tiles(demo, demo_bounds, range(8, 15))

    say(f"{args.grids:,}-grid partition ...")
    part = reused("gridmap_bench_partition", settings) if args.reuse else None
    if part is None:
        part = database("gridmap_bench_partition", settings)
        load_partition(part, args.grids)
    with Session(create_engine(part)) as session:
        row = session.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                "(SELECT ST_Extent(geom) AS e FROM unit_versions WHERE valid_to IS NULL) s"
            )
        ).one()
    part_tiles = bench_tiles(part, tuple(float(v) for v in row), range(9, 17))

    print("\nViews of the demo county (first screen 1280x800; sizes gzip -6; times at the server)")
    print(f"{'view':<44} {'page ms':>8} {'page gz':>8} {'zoom':>5} {'tiles':>6} {'tiles ms (sum/max)':>19}"
          f" {'tiles raw':>10} {'tiles gz':>9} {'cases gz':>9} {'total gz':>9}")  # fmt: skip
    for r in views:
        print(
            f"{r['view']:<44} {r['server_ms']:>8.0f} {r['gz']:>8,} {r['zoom']:>5} {r['tiles']:>6}"
            f" {r['tiles_ms']:>10.0f} / {r['tiles_max_ms']:>5.0f} {r['tiles_raw']:>10,} {r['tiles_gz']:>9,}"
            f" {r['cases_gz']:>9,} {r['total_gz']:>9,}"
        )
    for name, rows in (("demo county", demo_tiles), (f"partition, {args.grids:,} grids", part_tiles)):
        print(f"\nTiles (256 px, every level in one tile) of the {name}")
        print(f"{'z':>3} {'tiles':>6} {'median ms':>10} {'max ms':>8} {'max KB':>8} {'max gz KB':>10}"
              f" {'max grids':>10} {'grids omitted':>14}")  # fmt: skip
        for r in rows:
            print(
                f"{r['z']:>3} {r['tiles']:>6} {r['median_ms']:>10.1f} {r['max_ms']:>8.1f} {r['max_kb']:>8.1f}"
                f" {r['max_gz_kb']:>10.1f} {r['max_grids']:>10,} {r['omitted']:>14}"
            )


if __name__ == "__main__":
    main()
