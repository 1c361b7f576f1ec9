"""The planner's editor: each edit's round trip at the server (edit + validate + impact + balance).

    .venv/bin/python -m benchmarks.bench_plan_editor [--edits 12]

What the editor asks after every edit (tools.js / panels.js): POST /plans/{id}/edits, then
GET validate, impact and balance. Timed in-process (FastAPI TestClient on the app, PostgreSQL on
this machine): the server's time, no network. Two communities: the demo county's largest, and a
synthetic one of 200 grids (20 × 10 squares of about 150 m, imported like any boundary file).
Edits cycle through what planners do: attributes, a split across a grid, a merge of two
neighbours, a retire into a neighbour; the draft grows by one edit per step (each replays all).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr
from shapely.geometry import LineString, box, mapping
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from access.roles import Role, User
from api.access import resolve_user
from api.app import create_app
from benchmarks.bench_intake import cpu_times, machine_share
from benchmarks.bench_postgis import database, say
from geo.settings import Settings
from services.imports import import_units, load_demo

SYNTHETIC = "419998001001"
COLS, ROWS, STEP = 20, 10, 0.0015  # 200 grids of about 150 m × 165 m
X0, Y0 = 114.70, 33.30


def synthetic_features() -> list[dict]:
    """A county = street = community of COLS × ROWS square urban grids (codes in reading order)."""
    whole = box(X0, Y0, X0 + COLS * STEP, Y0 + ROWS * STEP)
    out = [
        {"type": "Feature", "geometry": mapping(whole), "properties": {"code": c, "name": n}}
        for c, n in ((SYNTHETIC[:6], "基准县"), (SYNTHETIC[:9], "基准街道"), (SYNTHETIC, "基准社区"))
    ]
    for r in range(ROWS):
        for c in range(COLS):
            cell = box(X0 + c * STEP, Y0 + (ROWS - r - 1) * STEP, X0 + (c + 1) * STEP, Y0 + (ROWS - r) * STEP)
            code = f"{SYNTHETIC}{r * COLS + c + 1:03d}"
            properties = {"code": code, "name": f"第{r * COLS + c + 1}网格", "kind": "urban"}
            out.append(
                {
                    "type": "Feature",
                    "geometry": mapping(cell),
                    "properties": {**properties, "households": 400, "population": 1100},
                }
            )
    return out


def load(url: str, settings: Settings) -> None:
    """The demo county and the synthetic community, committed."""
    import json

    engine = create_engine(url)
    with Session(engine) as session, session.begin():
        load_demo(session, settings, progress=lambda m: None)
    with tempfile.TemporaryDirectory() as tmp, Session(engine) as session, session.begin():
        path = Path(tmp) / "synthetic.geojson"
        collection = {"type": "FeatureCollection", "features": synthetic_features()}
        collection["crs"] = {"type": "name", "properties": {"name": "EPSG:4490"}}
        path.write_text(json.dumps(collection, ensure_ascii=False))
        import_units(session, path, valid_from=datetime(2024, 1, 1, tzinfo=UTC), settings=settings)
    engine.dispose()


def grids_of(session: Session, community: str) -> list[tuple[str, tuple[float, float, float, float]]]:
    """Current base grids of a community with their bounds, by code."""
    rows = session.execute(
        text(
            """SELECT v.code, ST_XMin(v.geom) a, ST_YMin(v.geom) b, ST_XMax(v.geom) c, ST_YMax(v.geom) d
               FROM unit_versions v JOIN units u USING (code)
               WHERE u.level = 'grid' AND v.valid_to IS NULL AND v.code LIKE :p AND v.kind <> 'special'
               ORDER BY v.code"""
        ),
        {"p": community + "%"},
    ).all()
    return [(r.code, (r.a, r.b, r.c, r.d)) for r in rows]


def neighbour_pairs(session: Session, community: str) -> list[tuple[str, str]]:
    """Pairs of base grids sharing a boundary line."""
    rows = session.execute(
        text(
            """SELECT a.code AS a, b.code AS b FROM unit_versions a JOIN unit_versions b
                 ON a.code < b.code AND ST_Intersects(a.geom, b.geom)
                AND ST_Length(ST_Intersection(a.geom, b.geom)) > 0
               WHERE a.valid_to IS NULL AND b.valid_to IS NULL AND a.code LIKE :p AND b.code LIKE :p
                 AND length(a.code) = 15 AND length(b.code) = 15
                 AND a.kind <> 'special' AND b.kind <> 'special'
               ORDER BY 1, 2"""
        ),
        {"p": community + "%"},
    ).all()
    return [(r.a, r.b) for r in rows]


def edits_for(session: Session, community: str, n: int) -> list[dict]:
    """n edits cycling attributes, split, merge, retire-into, each on grids not touched before."""
    grids = dict(grids_of(session, community))
    pairs, used, out = neighbour_pairs(session, community), set(), []
    free = [c for c in grids]
    while len(out) < n:
        step = len(out) % 4
        if step in (2, 3):
            pair = next(((a, b) for a, b in pairs if a not in used and b not in used), None)
            if pair is None:
                break
            used.update(pair)
            out.append(
                {"operation": "merge", "codes": list(pair), "into": pair[0]}
                if step == 2
                else {"operation": "retire", "code": pair[1], "into": pair[0]}
            )
            continue
        code = next((c for c in free if c not in used), None)
        if code is None:
            break
        used.add(code)
        if step == 0:
            out.append({"operation": "replace", "code": code, "households": 350, "name": "改名网格"})
        else:
            a, b, c, d = grids[code]
            x = (a + c) / 2
            line = LineString([(x, b - (d - b) * 0.1), (x, d + (d - b) * 0.1)])
            out.append(
                {"operation": "split", "code": code, "geometry": mapping(line), "name": "西", "names": ["东"]}
            )
    return out


def round_trips(client: TestClient, session: Session, community: str, n: int) -> list[float]:
    """Seconds per edit round trip (edit, validate, impact, balance) on a new draft of `community`."""
    plan = client.post("/plans", json={"unit": community, "title": "benchmark"}).json()["id"]
    took = []
    for edit in edits_for(session, community, n):
        start = time.perf_counter()
        answer = client.post(f"/plans/{plan}/edits", json=edit)
        assert answer.status_code == 201, answer.text
        for part in ("validate", "impact", "balance"):
            got = client.get(f"/plans/{plan}/{part}")
            assert got.status_code == 200, (part, got.text[:300])
        took.append(time.perf_counter() - start)
    client.post(f"/plans/{plan}/abandon")
    return took


def main() -> None:
    """Load, then time the round trips on both communities and print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--edits", type=int, default=12, help="edits per draft (default 12)")
    args = parser.parse_args()
    settings = Settings()
    url = database("gridmap_bench_plan_editor", settings)
    say("loading the demo county and a synthetic community of 200 grids")
    load(url, settings)
    engine = create_engine(url, pool_size=5)
    update = {"database_url": url, "background_jobs": False, "secret_key": SecretStr("bench-" + "x" * 40)}
    app = create_app(settings.model_copy(update=update), engine=engine)
    app.dependency_overrides[resolve_user] = lambda: User(
        id=0, username="bench", role=Role.ADMIN, unit_code=""
    )
    with TestClient(app) as client, Session(engine) as session:
        demo = session.execute(
            text(
                """SELECT substr(code, 1, 12) FROM units WHERE level = 'grid' AND code NOT LIKE :s
                   GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"""
            ),
            {"s": SYNTHETIC + "%"},
        ).scalar_one()
        print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores, shared with other work)")
        for name, community, target in (
            ("demo community", demo, 0.5),
            ("synthetic, 200 grids", SYNTHETIC, 1.0),
        ):
            before = cpu_times()
            took = round_trips(client, session, community, args.edits)
            p95 = statistics.quantiles(took, n=20, method="inclusive")[-1] if len(took) >= 2 else took[0]
            p50 = statistics.median(took)
            print(
                f"{name} {community}: {len(took)} edits, round trip p50 {p50 * 1000:.0f} ms, "
                f"p95 {p95 * 1000:.0f} ms, max {max(took) * 1000:.0f} ms "
                f"(target p95 ≤ {target * 1000:.0f} ms); {machine_share(before, cpu_times())}"
            )
    engine.dispose()


if __name__ == "__main__":
    main()
