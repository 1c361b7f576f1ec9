"""GridIndex (geo.lookup) against the rule of geo.assignment, with no database.

Hypothesis generates partitions near 114.9E 33.4N: Voronoi grids with one removed (a hole),
special grids over them (rectangles, possibly overlapping each other, and a round one of many
vertices), a base grid with a hole overlapping its neighbours, micro-grids (one sticking out of its
grid, one orphan), as Polygons or as MultiPolygons like PostGIS returns. Vertices lie on a dyadic
lattice (multiples of 2^-16 degrees), so vertices and edge midpoints are exactly on shared
boundaries. Every answer is compared with a brute-force reference that applies the rule point by
point with plain shapely.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, box

from geo.assignment import Status, grid_precedence
from geo.crs import to_metric, transformer
from geo.lookup import STATUSES, GridIndex

X0, Y0 = 114.875, 33.375  # exact binary fractions
SIZE = 2.0**-6  # ~1.5 km
LATTICE = 2.0**-16  # vertex precision (~1.5 m): midpoints stay exactly representable
AREA = box(X0, Y0, X0 + SIZE, Y0 + SIZE)
METRIC = "EPSG:4547"
TOLERANCE_M = 30.0
COMMUNITY = "411681001001"


def _snap(geometry: shapely.Geometry) -> shapely.Geometry:
    """On the lattice, and only the polygonal parts (rounding can leave slivers as lines)."""
    parts = [
        p for p in shapely.get_parts(shapely.set_precision(geometry, LATTICE)) if p.geom_type == "Polygon"
    ]
    return shapely.MultiPolygon(parts) if len(parts) > 1 else parts[0] if parts else shapely.Polygon()


def partition(seed: int, n: int, n_special: int) -> dict:
    """Grids (codes, kinds, geometries), micro-grids and the hole, all on the lattice."""
    rng = np.random.default_rng(seed)
    seeds = shapely.multipoints(rng.uniform([X0, Y0], [X0 + SIZE, Y0 + SIZE], (n, 2)))
    cells = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=AREA))
    cells = [_snap(c.intersection(AREA)) for c in cells]
    cells = [c for c in cells if not c.is_empty and c.geom_type == "Polygon"]
    order = rng.permutation(len(cells))  # codes unrelated to positions
    grids = [
        (f"{COMMUNITY}{k + 1:03d}", "urban" if k % 2 else "rural", cells[i]) for k, i in enumerate(order)
    ]
    hole_code, _, hole = grids.pop(int(rng.integers(len(grids))))
    for k in range(n_special):
        x, y = np.array([X0, Y0]) + rng.integers(0, 48, 2) * 2.0**-12
        w, h = rng.integers(2, 16, 2) * 2.0**-12
        shape = box(x, y, x + w, y + h)
        if k == 1:  # a round one, of more vertices than the numpy point-in-polygon takes
            shape = _snap(shape.centroid.buffer(min(w, h) / 2, quad_segs=80))
        grids.append((f"{COMMUNITY}{901 + k:03d}", "special", shape))
    first = grids[-n_special][2]  # a base grid with a hole: a ring around the first special
    grids.append(
        (f"{COMMUNITY}800", "rural", _snap(first.buffer(2.0**-11, join_style="mitre").difference(first)))
    )
    micro = []
    for code, _, geom in grids[:3] + grids[-1:]:  # split by a vertical line on the lattice
        minx, miny, maxx, maxy = geom.bounds
        cut = X0 + np.round((minx + maxx) / 2 / LATTICE - X0 / LATTICE) * LATTICE
        micro += [
            (f"{code}001", _snap(geom.intersection(box(minx, miny, cut, maxy)))),
            (f"{code}002", _snap(geom.intersection(box(cut, miny, maxx, maxy)))),
        ]
    code, geom = micro[0]  # one micro-grid sticks out of its grid
    micro[0] = (
        code,
        _snap(geom.union(box(*geom.centroid.coords[0], geom.centroid.x + 0.004, geom.centroid.y + 0.002))),
    )
    micro.append((f"{hole_code}001", hole))  # an orphan: its grid was removed
    micro = [(c, g) for c, g in micro if not g.is_empty and g.is_valid]
    return {"grids": grids, "micro": micro, "hole": hole}


def reference(grids: list, metric: list, micro: list, lon: float, lat: float) -> tuple:
    """The rule for one point with plain shapely: (status, grid, micro, distance, nearest, nearest_m)."""
    point = Point(lon, lat)
    covering = [i for i, (_, _, g) in enumerate(grids) if g.intersects(point)]
    if covering:
        chosen = min(covering, key=lambda i: grid_precedence(grids[i][1], grids[i][0]))
        own = [j for j, (c, g) in enumerate(micro) if c[:-3] == grids[chosen][0] and g.intersects(point)]
        return Status.ASSIGNED, chosen, min(own, key=lambda j: micro[j][0], default=-1), 0.0, -1, np.nan
    pm = Point(transformer("EPSG:4490", METRIC).transform(lon, lat))
    distances = [g.distance(pm) for g in metric]
    d = min(distances)
    nearest = min((i for i, di in enumerate(distances) if di == d), key=lambda i: grids[i][0])
    if d <= TOLERANCE_M:
        return Status.SNAPPED, nearest, -1, d, -1, np.nan
    return Status.UNASSIGNED, -1, -1, np.nan, nearest, d


def sample(data: dict, rng: np.random.Generator) -> np.ndarray:
    """Random points in and around the area and the hole, far ones, every vertex and edge midpoint."""
    margin = 0.002
    pts = [rng.uniform([X0 - margin, Y0 - margin], [X0 + SIZE + margin, Y0 + SIZE + margin], (300, 2))]
    minx, miny, maxx, maxy = data["hole"].bounds
    pts.append(rng.uniform([minx, miny], [maxx, maxy], (60, 2)))
    pts.append([[X0 + SIZE + 0.3, Y0], [X0 - 0.05, Y0 + SIZE / 2], [X0 + 5, Y0 + 5]])  # far away
    for geom in [g for _, _, g in data["grids"]] + [g for _, g in data["micro"]]:
        xy = shapely.get_coordinates(geom)
        pts += [xy, (xy[1:] + xy[:-1]) / 2]  # vertices and exact midpoints of edges
    return np.unique(np.concatenate(pts), axis=0)


def build(data: dict, max_cells: int = 16_000_000, multi: bool = False) -> GridIndex:
    """The index of a partition; `multi` stores every polygon as a MultiPolygon, like PostGIS."""
    grids, micro = data["grids"], data["micro"]
    wrap = (
        (lambda g: shapely.MultiPolygon([g]) if g.geom_type == "Polygon" else g) if multi else (lambda g: g)
    )
    return GridIndex(
        [c for c, _, _ in grids],
        [k for _, k, _ in grids],
        np.array([wrap(g) for _, _, g in grids]),
        micro_codes=[c for c, _ in micro],
        micro_geometries=np.array([wrap(g) for _, g in micro]),
        snap_tolerance_m=TOLERANCE_M,
        metric_crs=METRIC,
        max_cells=max_cells,
    )


def check_against_reference(data: dict, index: GridIndex, xy: np.ndarray) -> list[tuple]:
    result = index.assign(xy[:, 0], xy[:, 1], chunk=97)
    metric = [to_metric(g, METRIC) for _, _, g in data["grids"]]
    expected = [reference(data["grids"], metric, data["micro"], x, y) for x, y in xy]
    for i, (status, grid, micro, distance, nearest, nearest_m) in enumerate(expected):
        got = (STATUSES[result.status[i]], result.grid[i], result.micro_grid[i], result.nearest[i])
        assert got == (status, grid, micro, nearest), (xy[i].tolist(), got, expected[i])
        np.testing.assert_allclose(result.distance_m[i], distance, rtol=1e-9, atol=1e-6)
        np.testing.assert_allclose(result.nearest_m[i], nearest_m, rtol=1e-9, atol=1e-6)
    return expected


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    n=st.integers(3, 25),
    n_special=st.integers(1, 3),
    max_cells=st.sampled_from([16, 2_000, 16_000_000]),
    multi=st.booleans(),
)
def test_index_follows_the_rule(seed, n, n_special, max_cells, multi):
    data = partition(seed, n, n_special)
    index = build(data, max_cells, multi)
    check_against_reference(data, index, sample(data, np.random.default_rng(seed)))

    grids = data["grids"]
    specials = shapely.union_all([g for _, k, g in grids if k == "special"])
    codes = [c for c, _, _ in grids]
    probe = []
    for i, (_, kind, g) in enumerate(grids):  # strictly inside: the grid itself (or the lowest special)
        inner = g if kind == "special" else g.difference(specials)
        if not inner.is_empty and inner.area > 0:
            p = inner.point_on_surface()
            covering = [j for j, (_, _, h) in enumerate(grids) if h.intersects(p)]
            if kind == "special":
                probe.append(
                    (p, min((j for j in covering if grids[j][1] == "special"), key=codes.__getitem__))
                )
            elif covering == [i]:
                probe.append((p, i))
    hole = data["hole"].difference(shapely.union_all([g for _, _, g in grids]))
    if not hole.is_empty and hole.area > 0:
        probe.append((hole.point_on_surface(), None))
    xy = np.array([[p.x, p.y] for p, _ in probe])
    result = index.assign(xy[:, 0], xy[:, 1])
    for k, (p, expected) in enumerate(probe):
        if expected is not None:
            assert (result.status[k], result.grid[k]) == (0, expected)
        else:  # in the hole: snapped iff the nearest grid is within the tolerance, else unassigned
            pm = Point(transformer("EPSG:4490", METRIC).transform(p.x, p.y))
            d = min(to_metric(g, METRIC).distance(pm) for _, _, g in grids)
            assert STATUSES[result.status[k]] == (Status.SNAPPED if d <= TOLERANCE_M else Status.UNASSIGNED)
            assert (result.grid[k] if d <= TOLERANCE_M else result.nearest[k]) >= 0


def square(x: float, y: float, size: float = 2.0**-10) -> shapely.Polygon:
    return box(x, y, x + size, y + size)


def test_shared_edges_and_vertices_go_to_the_lowest_code():
    s = 2.0**-10
    geoms = np.array([square(X0 + s, Y0), square(X0, Y0), square(X0, Y0 + s), square(X0 + s, Y0 + s)])
    codes = [f"{COMMUNITY}004", f"{COMMUNITY}002", f"{COMMUNITY}003", f"{COMMUNITY}001"]
    index = GridIndex(codes, ["urban"] * 4, geoms)
    lon = np.array([X0 + s, X0 + s, X0 + s / 2, X0 + s, X0 + s / 2])
    lat = np.array([Y0 + s, Y0 + s / 2, Y0 + s, Y0 + 1.5 * s, Y0 + s / 2])
    result = index.assign(lon, lat)
    # centre vertex (all four) -> 001; edge 002|004 -> 002; edge 002|003 -> 002; edge 003|001 -> 001
    assert [codes[g] for g in result.grid] == [codes[3], codes[1], codes[1], codes[3], codes[1]]
    assert list(result.status) == [0] * 5


def test_special_wins_and_micro_grid_follows_the_chosen_grid():
    s = 2.0**-10
    base, special = square(X0, Y0, 2 * s), square(X0 + s / 2, Y0 + s / 2, s)
    index = GridIndex(
        [f"{COMMUNITY}001", f"{COMMUNITY}901"],
        ["urban", "special"],
        np.array([base, special]),
        micro_codes=[f"{COMMUNITY}001001", f"{COMMUNITY}001002"],
        micro_geometries=np.array([square(X0, Y0, 2 * s), square(X0, Y0, s)]),
    )
    lon, lat = np.array([X0 + s, X0 + s / 4, X0 + s / 2]), np.array([Y0 + s, Y0 + s / 4, Y0 + s])
    result = index.assign(lon, lat)
    assert list(result.grid) == [1, 0, 1]  # inside the special and on its edge: the special
    assert list(result.micro_grid) == [-1, 0, -1]  # the base grid's micro-grids never go to the special


def test_chunks_and_raster_size_do_not_change_answers():
    data = partition(7, 20, 3)
    xy = sample(data, np.random.default_rng(7))
    answers = []
    for max_cells, chunk in [(16_000_000, 1_000_000), (64, 13), (5_000, 1)]:
        r = build(data, max_cells).assign(xy[:, 0], xy[:, 1], chunk=chunk)
        answers.append((r.status.tolist(), r.grid.tolist(), r.micro_grid.tolist(), r.nearest.tolist()))
    assert answers[0] == answers[1] == answers[2]


def test_unusable_and_empty_input():
    index = build(partition(3, 8, 1))
    result = index.assign(np.array([np.nan, X0 + SIZE / 2]), np.array([Y0, np.inf]))
    assert list(result.status) == [2, 2] and list(result.nearest) == [-1, -1]
    assert np.isnan(result.nearest_m).all()
    empty = index.assign(np.array([]), np.array([]))
    assert empty.status.shape == (0,) and empty.grid.dtype == np.int32
    assert index.build_seconds > 0 and len(index.codes) == len(index.kinds)


def test_no_grids_leaves_everything_unassigned():
    index = GridIndex([], [], np.array([], dtype=object), metric_crs=METRIC)
    result = index.assign(np.array([X0]), np.array([Y0]))
    assert (result.status[0], result.grid[0], result.nearest[0]) == (2, -1, -1)


def test_invalid_polygon_is_refused():
    bowtie = shapely.Polygon([(X0, Y0), (X0 + 0.01, Y0 + 0.01), (X0 + 0.01, Y0), (X0, Y0 + 0.01)])
    with pytest.raises(ValueError, match="not a valid"):
        GridIndex([f"{COMMUNITY}001"], ["urban"], np.array([bowtie]))
