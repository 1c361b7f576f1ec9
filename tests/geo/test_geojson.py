"""The one GeoJSON writer: precision that can only coarsen, RFC 7946 winding, nothing for no place."""

from __future__ import annotations

import shapely
import shapely.affinity
from shapely.geometry import Point, Polygon, shape

from geo import geojson

CLOCKWISE_WITH_HOLE = Polygon(
    [(114.0, 33.0), (114.0, 33.1), (114.1, 33.1), (114.1, 33.0)],
    [[(114.02, 33.02), (114.08, 33.02), (114.08, 33.08), (114.02, 33.08)]],  # counter-clockwise hole
)


def test_positions_are_rounded_to_seven_decimals_and_may_only_coarsen():
    assert geojson.position(114.12345678912, 33.98765432198) == [114.1234568, 33.9876543]
    assert geojson.position(114.12345678912, 33.98765432198, decimals=3) == [114.123, 33.988]
    assert geojson.position(114.12345678912, 33.98765432198, decimals=12) == [114.1234568, 33.9876543]
    assert geojson.point(None, 33.0) is None and geojson.coordinate(None) is None


def test_polygons_wind_right_handed_whatever_the_source():
    source = CLOCKWISE_WITH_HOLE
    assert not shapely.is_ccw(source.exterior) and shapely.is_ccw(source.interiors[0])
    written = shape(geojson.geometry(CLOCKWISE_WITH_HOLE))
    assert shapely.is_ccw(written.exterior) and not shapely.is_ccw(written.interiors[0])
    assert shapely.equals(written, CLOCKWISE_WITH_HOLE)


def test_many_geometries_at_once_as_one_and_none_for_no_place():
    nudged = shapely.affinity.translate(CLOCKWISE_WITH_HOLE, 3.14159e-8, 0)
    values = [nudged, None, Polygon(), Point(114.123456789, 33.1)]
    written = geojson.geometries(values)
    assert written == [geojson.geometry(v) for v in values]
    assert written[1] is None and written[2] is None
    assert written[3] == {"type": "Point", "coordinates": [114.1234568, 33.1]}
    assert written[0]["coordinates"][0][0] == [114.0, 33.0]


def test_features_and_collections():
    feature = geojson.feature(Point(114.5, 33.5), {"code": "1"}, id="1")
    assert feature == {
        "type": "Feature", "id": "1", "geometry": {"type": "Point", "coordinates": [114.5, 33.5]},
        "properties": {"code": "1"},
    }  # fmt: skip
    collection = geojson.feature_collection(iter([feature]), total=7)
    assert collection == {"type": "FeatureCollection", "total": 7, "features": [feature]}
    assert geojson.point_feature({"lon": 114.123456789, "lat": 33.0, "n": 1}) == {
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [114.1234568, 33.0]},
        "properties": {"n": 1},
    }  # fmt: skip
