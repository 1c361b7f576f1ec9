"""`gridmap assign` against PostGIS's own ST_Covers, and its saved grid index (services.grid_index)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import shapely
from sqlalchemy import create_engine, text

from tests import factories as f
from tests.conftest import DB_PREFIX, TEST_SECRET, fresh_database

# The rule as one SQL statement: of the current grids covering the point (boundary included),
# special before base, then the lowest code (geo.assignment).
REFERENCE_SQL = """
    SELECT p.id, (SELECT v.code FROM unit_versions v JOIN units u USING (code)
                  WHERE u.level = 'grid' AND v.valid_to IS NULL
                    AND ST_Covers(v.geom, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4490))
                  ORDER BY CASE v.kind WHEN 'special' THEN 0 ELSE 1 END, v.code LIMIT 1)
    FROM unnest(CAST(:ids AS text[]), CAST(:lon AS float8[]), CAST(:lat AS float8[])) AS p(id, lon, lat)
"""


@pytest.fixture(scope="module")
def env(settings, tmp_path_factory) -> dict[str, str]:
    """`gridmap` on a database of its own, with a home of its own (where the index is saved)."""
    return {
        **os.environ,
        "GRIDMAP_DATABASE_URL": fresh_database(settings, f"{DB_PREFIX}_assign"),
        "GRIDMAP_SECRET_KEY": TEST_SECRET,
        "GRIDMAP_HOME": str(tmp_path_factory.mktemp("home")),
    }


def gridmap(env, *args) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result


def points(features: list[dict]) -> tuple[list[str], np.ndarray]:
    """Random points over the county and around it, and every vertex and edge midpoint of every unit."""
    rng = np.random.default_rng(19)
    pts = [
        rng.uniform([f.X0 - 0.002, f.Y0 - 0.002], [f.X0 + f.SIZE + 0.002, f.Y0 + f.SIZE + 0.002], (400, 2))
    ]
    for feature in features:
        xy = shapely.get_coordinates(shapely.geometry.shape(feature["geometry"]))
        pts += [xy, (xy[1:] + xy[:-1]) / 2]
    xy = np.unique(np.concatenate(pts), axis=0)
    return [f"p{i}" for i in range(len(xy))], xy


def run_assign(env, tmp_path, ids, xy, name) -> tuple[dict[str, dict], str]:
    source = tmp_path / "points.csv"
    with source.open("w", newline="") as fh:
        csv.writer(fh).writerows(
            [("id", "lon", "lat"), *zip(ids, xy[:, 0].tolist(), xy[:, 1].tolist(), strict=True)]
        )
    out = tmp_path / name
    result = gridmap(env, "assign", str(source), "--crs", "cgcs2000", "-o", str(out))
    return {r["id"]: r for r in csv.DictReader(out.open())}, result.stderr


def postgis(env, ids, xy) -> dict[str, str | None]:
    engine = create_engine(env["GRIDMAP_DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(
            text(REFERENCE_SQL), {"ids": ids, "lon": xy[:, 0].tolist(), "lat": xy[:, 1].tolist()}
        ).all()
    engine.dispose()
    return dict(rows)


def check_against_postgis(env, ours: dict[str, dict], ids, xy) -> None:
    expected = postgis(env, ids, xy)
    assert sum(code is not None for code in expected.values()) > 200  # most points are in a grid
    for pid in ids:
        got = ours[pid]
        if expected[pid] is None:  # in no grid: snapped or unassigned, never assigned
            assert got["status"] in ("snapped", "unassigned"), (pid, got)
        else:
            assert (got["status"], got["grid_code"]) == ("assigned", expected[pid]), (pid, got, expected[pid])


def test_assign_gives_postgis_answers_and_reuses_its_index_until_the_grids_change(env, tmp_path):
    features = f.overlay_features()  # a gap (004 missing), a school over 001/003, a micro-grid
    gridmap(env, "import", str(f.write_geojson(tmp_path / "overlay.geojson", features)))
    ids, xy = points(features)
    first, said = run_assign(env, tmp_path, ids, xy, "first.csv")
    assert "grids indexed" in said
    check_against_postgis(env, first, ids, xy)

    _, said = run_assign(env, tmp_path, ids, xy, "second.csv")
    assert "grids loaded (unchanged since it was built)" in said
    assert (tmp_path / "first.csv").read_bytes() == (tmp_path / "second.csv").read_bytes()

    # Grid 004 fills the gap: the saved index is stale, the next run builds and saves a new one.
    gridmap(env, "import", str(f.write_geojson(tmp_path / "full.geojson", f.hierarchy())))
    third, said = run_assign(env, tmp_path, ids, xy, "third.csv")
    assert "grids indexed" in said
    check_against_postgis(env, third, ids, xy)
    in_gap = [
        pid
        for pid, (x, y) in zip(ids, xy, strict=True)
        if f.X0 + 0.021 < x < f.X0 + 0.039 and f.Y0 + 0.001 < y < f.Y0 + 0.019
    ]
    assert in_gap and all(third[p]["grid_code"] == f.grid_code(4) for p in in_gap)
    assert all(first[p]["status"] != "assigned" for p in in_gap)
    entries = list((Path(env["GRIDMAP_HOME"]) / "cache" / "grid-index").iterdir())
    assert len(entries) == 1  # the stale entry of this database was removed
