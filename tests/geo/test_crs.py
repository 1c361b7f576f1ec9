"""Coordinate systems: GCJ-02 / BD-09 round trips, EPSG codes, plausibility, metric zones."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geo import crs

CHINA_LON = st.floats(73.6, 134.7)
CHINA_LAT = st.floats(18.2, 53.5)
M_PER_DEG = 111_320.0


def metres(dlon: np.ndarray, dlat: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return np.hypot(dlon * M_PER_DEG * np.cos(np.radians(lat)), dlat * M_PER_DEG)


def test_gcj02_round_trip_is_below_a_centimetre_across_china():
    lon, lat = np.meshgrid(np.linspace(73.6, 134.7, 400), np.linspace(18.2, 53.5, 400))
    lon, lat = lon.ravel(), lat.ravel()
    back = crs.gcj02_to_wgs84(*crs.wgs84_to_gcj02(lon, lat))
    assert metres(back[0] - lon, back[1] - lat, lat).max() < 0.01
    back = crs.bd09_to_wgs84(*crs.wgs84_to_bd09(lon, lat))
    assert metres(back[0] - lon, back[1] - lat, lat).max() < 0.01


@settings(max_examples=300)
@given(lon=CHINA_LON, lat=CHINA_LAT)
def test_gcj02_inverse_recovers_any_point(lon, lat):
    gx, gy = crs.wgs84_to_gcj02(np.array([lon]), np.array([lat]))
    shift = metres(gx - lon, gy - lat, np.array([lat]))[0]
    assert 1 < shift < 1_000  # GCJ-02 moves points by metres to hundreds of metres
    wx, wy = crs.to_storage(gx, gy, "gcj02")
    assert metres(wx - lon, wy - lat, np.array([lat]))[0] < 0.001


def test_xiangcheng_shift_is_the_known_few_hundred_metres():
    gx, gy = crs.wgs84_to_gcj02(np.array([114.9]), np.array([33.4]))
    assert 300 < metres(gx - 114.9, gy - 33.4, np.array([33.4]))[0] < 700


def test_projected_coordinates_round_trip_through_storage():
    x, y = crs.from_storage([114.9], [33.4], "EPSG:4547")
    assert 400_000 < x[0] < 600_000 and 3_600_000 < y[0] < 3_800_000
    lon, lat = crs.to_storage(x, y, "EPSG:4547")
    assert abs(lon[0] - 114.9) < 1e-9 and abs(lat[0] - 33.4) < 1e-9


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("WGS84", "wgs84"),
        ("EPSG:4326", "wgs84"),
        (4326, "wgs84"),
        ("GCJ-02", "gcj02"),
        ("bd09", "bd09"),
        ("cgcs2000", "cgcs2000"),
        ("4490", "cgcs2000"),
        ("epsg:4547", "EPSG:4547"),
    ],
)
def test_crs_names(given, canonical):
    assert crs.normalize_crs(given) == canonical


@pytest.mark.parametrize("bad", ["mars", "EPSG:999999", "", None])
def test_unknown_crs_is_refused(bad):
    with pytest.raises(crs.CoordinateError):
        crs.normalize_crs(bad)


def test_swapped_and_projected_coordinates_are_named():
    with pytest.raises(crs.CoordinateError, match="swapped"):
        crs.check_plausible([33.4], [114.9])
    with pytest.raises(crs.CoordinateError, match="projected metres"):
        crs.check_plausible([500_000.0], [3_700_000.0])
    with pytest.raises(crs.CoordinateError, match="finite"):
        crs.check_plausible([float("nan")], [33.4])


ANY_FLOAT = st.floats(-1e7, 1e7) | st.sampled_from([float("nan"), float("inf"), -float("inf")])


@settings(max_examples=200)
@given(
    point=st.tuples(ANY_FLOAT, ANY_FLOAT) | st.tuples(CHINA_LON, CHINA_LAT),
    name=st.sampled_from(["wgs84", "gcj02", "bd09", "cgcs2000", "EPSG:4547"]),
)
def test_one_point_is_converted_and_refused_exactly_as_arrays_are(point, name):
    """point_to_storage (reports, lookups) is to_storage plus check_plausible, on floats."""
    with np.errstate(all="ignore"):  # NaN and far-off points through the GCJ-02 formulas
        try:
            xs, ys = crs.to_storage([point[0]], [point[1]], name)
            crs.check_plausible(xs, ys)
            expected: tuple | str = (float(xs[0]), float(ys[0]))
        except crs.CoordinateError as e:
            expected = str(e)
        try:
            answer: tuple | str = crs.point_to_storage(*point, name)
        except crs.CoordinateError as e:
            answer = str(e)
    assert answer == expected


def test_metric_zone_follows_longitude():
    assert crs.metric_crs_for(114.9) == "EPSG:4547"  # Xiangcheng, CM 114°E
    assert crs.metric_crs_for(75.2) == "EPSG:4534" and crs.metric_crs_for(134.9) == "EPSG:4554"


def test_the_metric_zone_of_geometries_is_the_one_at_the_centre_of_their_extent():
    west, east = shapely.box(110.5, 33.0, 110.7, 33.1), shapely.box(117.3, 33.0, 117.5, 33.1)
    assert crs.metric_crs_of(west) == crs.metric_crs_of([west, None]) == "EPSG:4546"  # CM 111°E
    assert crs.metric_crs_of(iter([east])) == "EPSG:4548"  # CM 117°E
    assert crs.metric_crs_of([west, east]) == "EPSG:4547"  # centre 114.0°E
    assert crs.metric_crs_of([]) == crs.metric_crs_of([shapely.Polygon()]) == "EPSG:4547"  # none to measure


def test_wgs84_points_are_stored_as_given_as_proj_says_without_asking_proj():
    # PROJ's own answer (what to_storage used to look up in every process, 0.15-0.4 s of it) ...
    assert crs.transformer("EPSG:4326", crs.STORAGE_CRS).definition.startswith("proj=noop")
    crs.transformer.cache_clear()
    lon, lat = np.array([114.905, 33.4512]), np.array([33.446, 33.0])
    x, y = crs.to_storage(lon, lat, "wgs84")
    assert crs.point_to_storage(114.905, 33.446, "EPSG:4326") == (114.905, 33.446)
    # ... is known without it: no transformer was made.
    assert crs.transformer.cache_info().currsize == 0
    np.testing.assert_array_equal(x, lon)
    np.testing.assert_array_equal(y, lat)
