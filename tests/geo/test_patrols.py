"""Patrols, pure: cleaning a track (outside China, future, impossible speed), thinning, coverage."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from geo import patrols
from geo.patrols import Limits, PatrolRejected, TrackPoint

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=5)
LON, LAT = 114.9, 33.43
METRE_LAT = 1 / 111_000  # about a metre of latitude, in degrees


def walk(n: int, step_m: float = 6.0, every_s: float = 5.0) -> list[TrackPoint]:
    """A walk north at step_m per every_s seconds."""
    return [
        TrackPoint(T0 + timedelta(seconds=i * every_s), LON, LAT + i * step_m * METRE_LAT, 5.0)
        for i in range(n)
    ]


def test_a_plausible_walk_keeps_every_point_and_measures_its_length():
    track = patrols.clean(walk(100), NOW)
    assert len(track.points) == 100 and not track.dropped
    assert patrols.length_m(track.points) == pytest.approx(99 * 6.0, rel=0.01)


def test_bad_points_are_dropped_and_counted_by_reason():
    points = walk(10)
    points[3] = TrackPoint(points[3].t, LON + 0.5, LAT, 5.0)  # 46 km in 5 s: a GPS jump
    points[5] = TrackPoint(points[5].t, 0.0, 0.0, 5.0)  # no fix: 0, 0
    points[7] = TrackPoint(points[7].t, LON, LAT + 7 * 6 * METRE_LAT, 900.0)  # a vague fix
    future = TrackPoint(NOW + timedelta(hours=1), LON, LAT + 60 * METRE_LAT, 5.0)
    track = patrols.clean([*points, future], NOW)
    assert dict(track.dropped) == {"too_fast": 1, "outside_china": 1, "inaccurate": 1, "future": 1}
    assert len(track.points) == 7


def test_a_track_without_two_plausible_points_is_refused_with_the_reasons():
    with pytest.raises(PatrolRejected, match="1 outside_china"):
        patrols.clean([TrackPoint(T0, LON, LAT), TrackPoint(T0 + timedelta(seconds=5), 200.0, 95.0)], NOW)


def test_points_out_of_time_order_are_dropped():
    points = walk(5)
    track = patrols.clean([points[0], points[2], points[1], points[3]], NOW)
    assert track.dropped == {"out_of_order": 1} and [p.t for p in track.points] == [
        points[i].t for i in (0, 2, 3)
    ]


@given(
    steps=st.lists(st.floats(min_value=0, max_value=30), min_size=2, max_size=80),
    min_step=st.floats(min_value=1, max_value=50),
)
def test_thinning_keeps_the_ends_and_never_leaves_a_gap_it_should_not(steps, min_step):
    lat, points = LAT, []
    for i, step in enumerate(steps):
        lat += step * METRE_LAT
        points.append(TrackPoint(T0 + timedelta(seconds=5 * i), LON, lat))
    limits = Limits(min_step_m=min_step, max_gap_s=60)
    kept = patrols.thin(points, limits)
    assert kept[0] == points[0] and kept[-1] == points[-1]
    assert [p.t for p in kept] == sorted(p.t for p in kept)
    for a, b in itertools.pairwise(kept[:-1]):  # each kept point is far enough from the one before ...
        assert patrols.step_metres(a, b) >= min_step * 0.999 or (b.t - a.t).total_seconds() >= 60
    # ... and every dropped point lies within min_step of the kept point before it
    for p in points:
        if p not in kept:
            before = max((k for k in kept if k.t < p.t), key=lambda k: k.t)
            assert patrols.step_metres(before, p) < min_step


def test_coverage_share_of_a_square_grid_and_a_line_through_it():
    square = shapely.box(0, 0, 200, 200)  # metres
    through = shapely.LineString([(100, -50), (100, 250)])
    assert patrols.coverage_share(square, [through], 50) == pytest.approx(0.5, abs=0.01)
    assert patrols.coverage_share(square, [], 50) == 0.0
    assert patrols.coverage_share(square, [through, shapely.LineString([(0, 0), (200, 200)])], 500) == 1.0


@given(x=st.floats(min_value=-100, max_value=300), d=st.floats(min_value=1, max_value=200))
def test_coverage_share_is_a_share_and_grows_with_distance(x, d):
    square = shapely.box(0, 0, 200, 200)
    line = [shapely.LineString([(x, -10), (x, 210)])]
    share = patrols.coverage_share(square, line, d)
    assert 0.0 <= share <= 1.0
    assert patrols.coverage_share(square, line, d * 2) >= share - 1e-9


def test_per_week_and_not_patrolled():
    assert patrols.per_week(3, T0, T0 + timedelta(days=14)) == pytest.approx(1.5)
    last = {"b": NOW - timedelta(days=1), "a": None, "c": NOW - timedelta(days=30)}
    assert patrols.not_patrolled(last, NOW, 7) == ["a", "c"]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(min_value=0, max_value=10_000), d=st.sampled_from([20.0, 50.0, 120.0]))
def test_the_lattice_figure_agrees_with_the_exact_buffer(seed, d):
    rng = np.random.default_rng(seed)
    area = shapely.Polygon([(0, 0), (400, 30), (380, 500), (-20, 450)])
    steps = rng.normal(0, 15, size=(120, 2)).cumsum(axis=0) + np.array([200, 250])
    tracks = [shapely.LineString(steps[:60]), shapely.LineString(steps[60:])]
    exact = shapely.intersection(area, shapely.union_all([t.buffer(d) for t in tracks])).area / area.area
    assert patrols.coverage_share(area, tracks, d) == pytest.approx(exact, abs=0.01)
