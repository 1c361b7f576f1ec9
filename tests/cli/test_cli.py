"""The `gridmap` command as a user runs it, on a database of its own (commands commit): import,
export, assign. The service commands (db, serve, escalate, user) are in test_cli_service.py."""

from __future__ import annotations

import csv

import geopandas as gpd
import pytest
from shapely.geometry import Polygon, box
from sqlalchemy import create_engine, text

from tests import factories as f
from tests.cli.command import env_on, gridmap
from tests.conftest import DB_PREFIX, fresh_database
from tests.gdal import check_gdal_reads

CLI_DATABASE = f"{DB_PREFIX}_cli"


@pytest.fixture(scope="module")
def cli_env(settings) -> dict[str, str]:
    """Environment for `gridmap` pointing at an empty database of its own."""
    return env_on(fresh_database(settings, CLI_DATABASE))


def test_import_then_export_round_trip(cli_env, tmp_path):
    src = f.write_geojson(tmp_path / "county.geojson", f.hierarchy())
    out = gridmap(cli_env, "import", str(src))
    assert "imported 7 units" in out.stderr and "7 new" in out.stderr
    assert "read 7 features" in out.stderr and "simplified the map's outlines" in out.stderr
    again = gridmap(cli_env, "import", str(src))
    assert "7 unchanged since they were imported (same digest), 0 to check" in again.stderr
    assert "county.geojson unchanged: all 7 units as stored, nothing written" in again.stderr
    gridmap(cli_env, "export", str(tmp_path / "grids.gpkg"), "--level", "grid", "--format", "gpkg")
    frame = gpd.read_file(tmp_path / "grids.gpkg")
    assert sorted(frame["code"]) == [f.grid_code(i) for i in range(1, 5)]
    assert frame.crs.to_epsg() == 4490
    check_gdal_reads(tmp_path / "grids.gpkg", "grid", 4)  # Debian's GDAL, without a warning
    gridmap(cli_env, "export", str(tmp_path / "streets.geojson"), "--level", "street")
    check_gdal_reads(tmp_path / "streets.geojson", "streets", 1)


def test_an_import_is_audited_and_a_refused_one_is_not(cli_env, tmp_path):
    src = f.write_geojson(tmp_path / "audited-county.geojson", f.hierarchy())
    gridmap(cli_env, "import", str(src), "--valid-from", "2024-01-01")
    bad = f.write_geojson(
        tmp_path / "audited-bad.geojson", [f.feature("1234567", box(f.X0, f.Y0, f.X0 + 0.01, f.Y0 + 0.01))]
    )
    assert gridmap(cli_env, "import", str(bad), check=False).returncode == 1
    engine = create_engine(cli_env["GRIDMAP_DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT actor, target, details FROM audit_log"
                " WHERE action = 'units_import' AND target LIKE 'audited-%' ORDER BY id"
            )
        ).all()
    engine.dispose()
    assert [(r.actor, r.target) for r in rows] == [("cli", "audited-county.geojson")]
    details = rows[0].details
    assert (
        details["crs"] == "cgcs2000" and details["created"] + details["versioned"] + details["unchanged"] == 7
    )


def test_bad_import_is_a_message_not_a_traceback_and_stores_nothing(cli_env, tmp_path):
    bow_tie = Polygon([(f.X0, f.Y0), (f.X0 + 0.01, f.Y0 + 0.01), (f.X0 + 0.01, f.Y0), (f.X0, f.Y0 + 0.01)])
    good = f.feature(
        f.grid_code(7), Polygon([(f.X0, f.Y0), (f.X0 + 0.01, f.Y0), (f.X0, f.Y0 + 0.01)]), kind="urban"
    )
    bad = f.feature(f.grid_code(8), bow_tie, kind="urban")
    src = f.write_geojson(tmp_path / "bad.geojson", [good, bad], crs=None)
    result = gridmap(cli_env, "import", str(src), check=False)
    assert result.returncode == 1
    assert "does not say which coordinate system" in result.stderr and "Traceback" not in result.stderr
    result = gridmap(cli_env, "import", str(src), "--crs", "wgs84", check=False)
    assert (
        result.returncode == 1 and "Self-intersection" in result.stderr and "Traceback" not in result.stderr
    )
    engine = create_engine(cli_env["GRIDMAP_DATABASE_URL"])
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT count(*) FROM units WHERE code = :c"), {"c": f.grid_code(7)}
        ).scalar()
    engine.dispose()
    assert stored == 0


def test_assign_csv_with_progress_and_bad_rows(cli_env, tmp_path):
    f_src = f.write_geojson(tmp_path / "county.geojson", f.hierarchy())
    gridmap(cli_env, "import", str(f_src))
    points = tmp_path / "points.csv"
    rows = [
        ("a", f.X0 + 0.01, f.Y0 + 0.03),  # grid 001
        ("b", f.X0 + 0.03, f.Y0 + 0.01),  # grid 004
        ("c", f.X0 - 0.0001, f.Y0 + 0.01),  # ~9 m west of grid 003: snapped
        ("d", f.X0 - 0.05, f.Y0 + 0.01),  # far away: unassigned
        ("e", "nan", f.Y0),  # unusable
    ]
    with points.open("w", newline="") as fh:
        csv.writer(fh).writerows([("id", "lon", "lat"), *rows])
    result = gridmap(cli_env, "assign", str(points), "--crs", "wgs84", "-o", str(tmp_path / "out.csv"))
    out = {r["id"]: r for r in csv.DictReader((tmp_path / "out.csv").open())}
    assert (out["a"]["status"], out["a"]["grid_code"]) == ("assigned", f.grid_code(1))
    assert (out["b"]["status"], out["b"]["grid_code"]) == ("assigned", f.grid_code(4))
    assert (out["c"]["status"], out["c"]["grid_code"]) == ("snapped", f.grid_code(3))
    assert 5 < float(out["c"]["distance_m"]) < 15
    assert (out["d"]["status"], out["d"]["grid_code"]) == ("unassigned", "")
    assert out["e"]["status"] == "invalid"
    assert "1 rows had unusable coordinates" in result.stderr
    # Not on a terminal: progress comes as lines, at every tenth.
    assert "5 of 5 points (100 %)" in result.stderr


def test_assign_says_what_is_wrong_with_the_csv_before_building_the_index(cli_env, tmp_path):
    points = tmp_path / "points.csv"
    points.write_text("name,x,y\na,114.9,33.4\n")
    out = str(tmp_path / "o.csv")
    result = gridmap(cli_env, "assign", str(points), "--crs", "wgs84", "-o", out, check=False)
    assert result.returncode == 1 and "lacks column(s) id, lon, lat (found: name, x, y)" in result.stderr
    assert "building the grid index" not in result.stderr and "Traceback" not in result.stderr


def test_progress_lines_move_in_tenths(tmp_path):
    from geo.batch import Progress

    lines: list[str] = []
    progress = Progress(1_000_000, terminal=False, say=lines.append)
    for _ in range(20):
        progress.update(50_000)
    assert lines[0] == "  100,000 of 1,000,000 points (10 %)" and len(lines) == 10


def test_unknown_crs_is_a_clear_error(cli_env, tmp_path):
    points = tmp_path / "p.csv"
    points.write_text("id,lon,lat\n1,114.9,33.4\n")
    result = gridmap(
        cli_env, "assign", str(points), "--crs", "mars", "-o", str(tmp_path / "o.csv"), check=False
    )
    assert result.returncode == 1 and "unknown coordinate system" in result.stderr


def test_a_crs_flag_against_the_files_own_is_confirmed_with_override_crs(cli_env, tmp_path):
    src = f.write_geojson(tmp_path / "labelled.geojson", f.hierarchy(), crs="EPSG:4326")
    refused = gridmap(cli_env, "import", str(src), "--crs", "gcj02", check=False)
    assert refused.returncode == 1 and "add --override-crs" in refused.stderr
    assert "Traceback" not in refused.stderr
    taken = gridmap(cli_env, "import", str(src), "--crs", "gcj02", "--override-crs")
    assert "(gcj02)" in taken.stderr
