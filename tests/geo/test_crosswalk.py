"""The crosswalk of a legacy departmental layer onto the unified grids (geo.crosswalk)."""

from __future__ import annotations

import csv
import json

import pytest
from shapely.geometry import box

from geo import crosswalk as cw
from geo.coverage import Unit
from geo.crs import from_storage
from geo.importer import ImportRejected
from tests import factories as f
from tests.geo.test_coverage import storage

# Two communities side by side, two grids each (metric, relative to the test origin).
GRIDS = [
    Unit("419999001001001", storage(box(0, 0, 100, 200)), kind="urban"),
    Unit("419999001001002", storage(box(100, 0, 200, 200)), kind="urban"),
    Unit("419999001002001", storage(box(200, 0, 300, 200)), kind="rural"),
    Unit("419999001002002", storage(box(300, 0, 400, 200)), kind="rural"),
    Unit("419999001001901", storage(box(10, 10, 30, 30)), kind="special"),
]


def test_each_legacy_polygon_gets_its_grids_shares_and_community_crossing():
    legacy = [
        cw.LegacyPolygon("A", "老网格A", storage(box(50, 0, 150, 200))),  # half of 001, half of 002
        cw.LegacyPolygon("B", None, storage(box(150, 0, 250, 100))),  # across the community line
        cw.LegacyPolygon("C", None, storage(box(1000, 0, 1100, 100))),  # nowhere
        cw.LegacyPolygon("D", None, storage(box(0, 0, 99.5, 200))),  # 0.5 % in grid 002: noise
    ]
    a, b, c, d = cw.crosswalk(legacy, GRIDS, min_share=0.01)
    assert [(o.grid, round(o.share_of_legacy, 3), round(o.share_of_grid, 3)) for o in a.overlaps] == [
        ("419999001001001", 0.5, 0.5),
        ("419999001001002", 0.5, 0.5),
    ]
    assert abs(a.area_m2 - 20000) < 1 and abs(a.overlaps[0].area_m2 - 10000) < 1
    assert a.communities == ("419999001001",) and not a.crosses_community
    assert b.crosses_community and b.communities == ("419999001001", "419999001002")
    assert c.overlaps == () and not c.crosses_community
    assert [o.grid for o in d.overlaps] == ["419999001001001", "419999001001901"]  # the special, not 002
    assert d.communities == ("419999001001",)


def test_read_a_legacy_layer_in_another_crs_and_write_csv_and_geojson(tmp_path):
    # A department's layer in Gauss-Krüger metres, without an id column: features are numbered.
    square = storage(box(50, 0, 150, 200))
    x, y = from_storage(*square.exterior.xy, "EPSG:4547")
    ring = [list(p) for p in zip(x, y, strict=True)]
    feature = {
        "type": "Feature",
        "properties": {"名称": "综治网格1"},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }
    path = f.write_geojson(tmp_path / "legacy.geojson", [feature], crs=None)
    with pytest.raises(ImportRejected):
        cw.read_legacy(path, None)  # undeclared CRS
    [polygon] = cw.read_legacy(path, "EPSG:4547")
    assert polygon.id == "1" and polygon.geometry.symmetric_difference(square).area < 1e-12
    entries = cw.crosswalk([polygon], GRIDS, min_share=0.01)
    assert cw.write_csv(entries, tmp_path / "out.csv") == 2
    rows = list(csv.DictReader((tmp_path / "out.csv").open(encoding="utf-8")))
    assert [r["grid_code"] for r in rows] == ["419999001001001", "419999001001002"]
    assert rows[0]["share_of_legacy"] == "0.5" and rows[0]["crosses_community"] == "false"
    cw.write_geojson(entries, tmp_path / "out.geojson")
    [out] = json.loads((tmp_path / "out.geojson").read_text(encoding="utf-8"))["features"]
    assert out["properties"]["legacy_id"] == "1" and len(out["properties"]["grids"]) == 2
