"""GeoJSON of every unit of a level, written by the one writer (geo/geojson.py) from store rows,
against the same collection built inside PostGIS (jsonb_agg of ST_AsGeoJSON, what /grids did
before the writer existed).

    .venv/bin/python -m benchmarks.bench_geojson --url postgresql+psycopg://… [--level grid] [--rounds 5]

The database must hold a county (`gridmap demo`, or the tests' `<prefix>_demo` database). Figures:
median and best time to a JSON string of the collection, its size, and that both hold the same
coordinates. The machine's load is printed with them (shared machines make slow figures).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from geo import geojson
from services.units import units_collection

IN_POSTGIS = """
    SELECT jsonb_build_object('type', 'FeatureCollection',
               'features', coalesce(jsonb_agg(f.feature), '[]'))::text
    FROM (SELECT jsonb_build_object('type', 'Feature', 'id', v.code,
                 'geometry', ST_AsGeoJSON(ST_ForcePolygonCCW(v.geom), :decimals, 0)::jsonb,
                 'properties', v.attributes || jsonb_build_object('code', v.code, 'name', v.name)) AS feature
          FROM unit_versions v JOIN units u USING (code)
          WHERE u.level = :level AND v.valid_to IS NULL ORDER BY v.code) f"""


def timed(fn, rounds: int) -> tuple[list[float], str]:
    """Seconds of each round and the last result."""
    times, out = [], ""
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--level", default="grid")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    engine = create_engine(args.url)
    with Session(engine) as session:
        ours, written = timed(lambda: geojson.dumps(units_collection(session, level=args.level)), args.rounds)
        params = {"level": args.level, "decimals": geojson.DECIMALS}
        theirs, built = timed(lambda: session.execute(text(IN_POSTGIS), params).scalar_one(), args.rounds)
    a, b = json.loads(written)["features"], json.loads(built)["features"]
    same = [x["geometry"]["coordinates"] for x in a] == [x["geometry"]["coordinates"] for x in b]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (not a quiet machine if > 1)")
    print(f"{len(a)} {args.level} units, same coordinates: {same}")
    for name, times, body in (("geo.geojson writer", ours, written), ("built in PostGIS", theirs, built)):
        print(
            f"{name:20s} median {statistics.median(times) * 1000:7.0f} ms, best {min(times) * 1000:7.0f} ms, "
            f"{len(body.encode()) / 1e6:.1f} MB"
        )


if __name__ == "__main__":
    main()
