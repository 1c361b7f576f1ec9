"""The flat arrays' bucket index finds exactly the polygons GEOS's STRtree finds, edges included."""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, box

from benchmarks.partition import make_partition
from geo.flat_grids import FlatPolygons, arrays, combined, ragged


def strtree_covering(geometries: np.ndarray, x: float, y: float) -> list[int]:
    """What the STRtree copy answered: the polygons intersecting the point."""
    tree = shapely.STRtree(geometries)
    return sorted(int(i) for i in tree.query(shapely.Point(x, y), predicate="intersects"))


def test_covering_equals_the_strtree_on_a_partition_with_holes_overlaps_and_specials():
    grids = make_partition(600, seed=5, removed_share=0.05, grown_share=0.1, special_share=0.05)
    geometries = np.asarray(grids.geometry.values, dtype=object)
    flat = FlatPolygons(arrays(geometries))
    tree = shapely.STRtree(geometries)
    minx, miny, maxx, maxy = shapely.total_bounds(geometries)
    rng = np.random.default_rng(8)
    x = rng.uniform(minx - 0.001, maxx + 0.001, 3000)
    y = rng.uniform(miny - 0.001, maxy + 0.001, 3000)
    # Every vertex too: points on shared edges and corners, where boundary rules matter.
    vertices = shapely.get_coordinates(geometries[:150])
    x, y = np.concatenate([x, vertices[:, 0]]), np.concatenate([y, vertices[:, 1]])
    point, polygon = tree.query(shapely.points(x, y), predicate="intersects")
    expected = [sorted(polygon[point == i].tolist()) for i in range(len(x))]
    assert [flat.covering(float(a), float(b)) for a, b in zip(x, y, strict=True)] == expected
    assert sum(len(e) > 1 for e in expected) > 50  # overlaps and shared edges were really asked
    assert sum(not e for e in expected) > 100  # and holes and outside


def test_polygons_with_holes_multipolygons_and_missing_items_round_trip():
    ring = box(0, 0, 10, 10).difference(box(4, 4, 6, 6))  # a hole
    two = MultiPolygon([box(20, 0, 21, 1), box(30, 0, 31, 1)])  # far apart parts
    geometries = np.array([ring, None, two, shapely.Polygon()], dtype=object)
    flat = FlatPolygons(arrays(geometries))
    assert len(flat) == 4
    assert flat.geometry(0).equals(MultiPolygon([ring])) and flat.geometry(2).equals(two)
    assert flat.covering(5, 5) == [] and flat.covering(4, 5) == [0] and flat.covering(1, 1) == [0]
    assert flat.covering(30.5, 0.5) == [2] and flat.covering(25, 0.5) == []
    assert flat.covering(float("nan"), 1.0) == [] and flat.covering(-1e9, 0) == []
    assert strtree_covering(geometries, 10, 10) == flat.covering(10, 10) == [0]  # a corner counts
    empty = FlatPolygons(arrays(np.empty(0, dtype=object)))
    assert len(empty) == 0 and empty.covering(1.0, 1.0) == []


def test_arrays_made_in_chunks_are_the_arrays_made_at_once():
    grids = make_partition(300, seed=6, removed_share=0.05, special_share=0.05)
    geometries = np.asarray(grids.geometry.values, dtype=object)
    geometries[[3, 40]] = None  # missing items keep their place
    whole = arrays(geometries)
    for size in (1, 7, 100, 299):
        chunks = [ragged(geometries[i : i + size]) for i in range(0, len(geometries), size)]
        made = combined(chunks)
        assert made.keys() == whole.keys()
        assert all(np.array_equal(made[k], whole[k], equal_nan=True) for k in whole), size
