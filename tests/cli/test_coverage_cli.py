"""`gridmap coverage` and `gridmap crosswalk` as a user runs them, on a database of their own."""

from __future__ import annotations

import csv
import json
import os

import pytest
from shapely.geometry import box

from tests import factories as f
from tests.cli.command import env_on, gridmap
from tests.conftest import DB_PREFIX, TEST_SECRET, county_database, fresh_database
from tests.store.test_coverage_db import _with_hole

HOLE = box(f.X0 + 0.005, f.Y0 + 0.025, f.X0 + 0.006, f.Y0 + 0.026)


@pytest.fixture(scope="module")
def cov_env(settings) -> dict[str, str]:
    """An own database holding the factory county with a hole in grid 001."""
    return env_on(county_database(settings, f"{DB_PREFIX}_cov_cli", _with_hole(f.hierarchy(), 1, HOLE)))


def test_coverage_as_geojson_and_saved_then_as_a_table(cov_env):
    out = gridmap(cov_env, "coverage", "--unit", f.COUNTY, "--format", "geojson", "--save")
    findings = json.loads(out.stdout)
    gaps = [x for x in findings["features"] if x["properties"]["kind"] == "gap"]
    assert len(gaps) == 1 and gaps[0]["properties"]["new"] is True
    assert "saved report" in out.stderr
    table = gridmap(cov_env, "coverage")  # every county, as a table
    assert f"coverage of {f.COUNTY}" in table.stdout
    gap_row = next(line for line in table.stdout.splitlines() if " gap " in line)
    assert gap_row.split("│")[2].strip() == "1" and gap_row.split("│")[3].strip() == "0"  # count 1, new 0
    missing = gridmap(cov_env, "coverage", "--unit", "419998", check=False)
    assert missing.returncode == 1 and "no unit with code 419998" in missing.stderr
    unpublished = gridmap(cov_env, "coverage", "--after-plan", "999", check=False)
    assert unpublished.returncode == 1 and "plan 999 is not published" in unpublished.stderr


def test_crosswalk_writes_csv_and_geojson(cov_env, tmp_path):
    # A legacy polygon over the middle of the county: a quarter of each grid.
    half = f.SIZE / 2
    legacy = box(f.X0 + half / 2, f.Y0 + half / 2, f.X0 + 1.5 * half, f.Y0 + 1.5 * half)
    features = [{**f.feature("L1", legacy), "properties": {"id": "L1"}}]
    path = f.write_geojson(tmp_path / "zongzhi.geojson", features, crs=None)
    out = gridmap(cov_env, "crosswalk", str(path), "--crs", "wgs84", "-o", str(tmp_path / "xw"))
    assert "1 legacy polygons" in out.stderr
    rows = list(csv.DictReader((tmp_path / "xw.csv").open(encoding="utf-8")))
    assert sorted(r["grid_code"] for r in rows) == [f.grid_code(i) for i in range(1, 5)]
    assert all(abs(float(r["share_of_legacy"]) - 0.25) < 0.01 for r in rows)
    features = json.loads((tmp_path / "xw.geojson").read_text(encoding="utf-8"))["features"]
    assert features[0]["properties"]["crosses_community"] is False


def test_coverage_of_every_county_sums_up_and_finds_overlaps_between_counties(settings, tmp_path):
    env = {
        **os.environ,
        "GRIDMAP_DATABASE_URL": fresh_database(settings, f"{DB_PREFIX}_cov_roots"),
        "GRIDMAP_SECRET_KEY": TEST_SECRET,
    }
    half = f.SIZE / 2
    # Two counties imported side by side with no parent, overlapping by a strip ~90 m wide.
    west = f.feature("419997", box(f.X0, f.Y0, f.X0 + half + 0.001, f.Y0 + f.SIZE), name="西县")
    east = f.feature("419998", box(f.X0 + half, f.Y0, f.X0 + f.SIZE, f.Y0 + f.SIZE), name="东县")
    gridmap(env, "import", str(f.write_geojson(tmp_path / "two.geojson", [west, east])))

    table = gridmap(env, "coverage")
    assert "419997: 1 gap" in table.stderr and "419998: 1 gap" in table.stderr  # a line per county
    assert "1 overlap(s) between top-level units" in table.stderr
    totals = [line for line in table.stdout.splitlines() if "│" in line]
    overlap = next(line for line in totals if " overlap " in line).split("│")
    assert [c.strip() for c in overlap[1:4]] == ["overlap", "county", "1"]
    assert 300_000 < float(overlap[4].strip().replace(",", "")) < 500_000  # ~93 m × 4.4 km

    out = tmp_path / "findings.geojson"
    gridmap(env, "coverage", "--format", "geojson", "-o", str(out))
    features = json.loads(out.read_text(encoding="utf-8"))["features"]
    between = [x["properties"]["units"] for x in features if x["properties"]["kind"] == "overlap"]
    assert between == [["419997", "419998"]]
