"""Feature digests (geo/import_digest.py): what changes a digest, and which rows a re-import checks."""

from __future__ import annotations

import geopandas as gpd
from shapely.geometry import box

from geo.import_digest import feature_digests, rows_to_check

GRID = "410101001001001"


def _frame(**changes) -> gpd.GeoDataFrame:
    row = {
        "code": GRID,
        "name": "网格",
        "kind": "urban",
        "households": 12,
        "geometry": box(111, 31, 111.01, 31.01),
    }
    row.update(changes)
    return gpd.GeoDataFrame([row], geometry="geometry", crs="EPSG:4490")


def test_the_same_row_has_the_same_digest_and_any_change_another():
    (same,) = feature_digests(_frame(), "cgcs2000", repair=False)
    assert feature_digests(_frame(), "cgcs2000", repair=False) == [same]
    others = [
        feature_digests(_frame(name="网格二"), "cgcs2000", repair=False),
        feature_digests(_frame(households="12"), "cgcs2000", repair=False),  # text, not a number
        feature_digests(_frame(geometry=box(111, 31, 111.01, 31.011)), "cgcs2000", repair=False),
        feature_digests(_frame(), "wgs84", repair=False),  # read in another CRS: stored elsewhere
        feature_digests(_frame(), "cgcs2000", repair=True),
        feature_digests(_frame(extra="x"), "cgcs2000", repair=False),  # a new attribute
    ]
    assert all(len(d) == 1 and d[0] != same for d in others)
    assert len({d[0] for d in others}) == len(others)


def test_rows_to_check_are_the_changed_ones_and_their_children():
    codes = ["410101001001", GRID, GRID + "001", GRID + "002", "410101001001002"]
    digests = [bytes([i]) * 16 for i in range(len(codes))]
    stored = dict(zip(codes, digests, strict=True))
    assert rows_to_check(codes, digests, stored) == []
    changed = [*digests[:1], b"x" * 16, *digests[2:]]
    assert rows_to_check(codes, changed, stored) == [1, 2, 3]  # the grid and its micro-grids
    assert rows_to_check([*codes, "410101001001003"], [*digests, b"n" * 16], stored) == [5]  # new
    assert rows_to_check([*codes, GRID], [*digests, digests[1]], stored) == list(range(6))  # twice
