"""geo.import_geometry converts a file's geometries as arrays exactly as the per-feature steps do."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, box

from geo import crs
from geo.import_geometry import storage_geometries
from geo.importer import _stored_alone
from geo.validation import ValidationReport

X, Y = 114.9, 33.4


def geometries_in(crs_name: str) -> list:
    """Good and bad geometries, given in `crs_name` (good ones near the test county)."""
    forward = {
        "wgs84": lambda x, y: (x, y),
        "gcj02": crs.wgs84_to_gcj02,
        "EPSG:4547": crs.transformer("EPSG:4490", "EPSG:4547").transform,
    }[crs_name]

    def shape(g):
        return shapely.transform(g, lambda xy: np.column_stack(forward(xy[:, 0], xy[:, 1])))

    square = box(X, Y, X + 0.01, Y + 0.01)
    return [
        shape(square),
        shape(MultiPolygon([square, box(X + 0.02, Y, X + 0.03, Y + 0.01)])),
        shape(Polygon([(X, Y, 5), (X + 0.01, Y, 5), (X + 0.01, Y + 0.01, 5)])),  # 3-D: made 2-D
        shape(box(X, Y, X + 0.01, Y + 0.01).difference(box(X + 0.003, Y + 0.003, X + 0.006, Y + 0.006))),
        shape(Polygon([(X, Y), (X + 0.01, Y + 0.01), (X + 0.01, Y), (X, Y + 0.01)])),  # a bow tie
        shape(Point(X, Y).buffer(0.001)),
        Point(X, Y),
        Polygon(),
        None,
        box(Y, X, Y + 0.01, X + 0.01),  # lon and lat swapped
        box(500000, 3700000, 500100, 3700100),  # metres given as degrees
    ]


@pytest.mark.parametrize("crs_name", ["wgs84", "gcj02", "EPSG:4547"])
@pytest.mark.parametrize("repair", [False, True])
def test_arrays_give_what_each_feature_alone_gives(crs_name, repair):
    given = geometries_in(crs_name)
    converted = storage_geometries(np.array(given, dtype=object), crs_name)
    assert all(converted[i] is not None for i in (0, 1, 2, 3, 5))  # the good ones (more may be, in metres)
    for i, (geometry, ready) in enumerate(zip(given, converted, strict=True)):
        report = ValidationReport()
        alone = _stored_alone(geometry, f"feature {i + 1}", crs_name, repair, report)
        if ready is None:  # the per-feature steps refuse or repair it, with their message
            assert report.errors or report.repairs, i
        else:
            assert not report.errors and not report.repairs, i
            assert ready.geom_type == alone.geom_type == "MultiPolygon"
            assert shapely.equals_exact(ready, alone, tolerance=1e-12), i


def test_nothing_and_only_bad_input():
    assert len(storage_geometries(np.array([], dtype=object), "wgs84")) == 0
    assert storage_geometries(np.array([None, Point(X, Y)], dtype=object), "wgs84").tolist() == [None, None]
