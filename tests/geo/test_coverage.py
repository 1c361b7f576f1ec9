"""Coverage analysis without a database (geo.coverage): hand-made cases and random partitions."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from geo import crs
from geo.coverage import (
    CasePoint,
    Finding,
    Kind,
    Tolerances,
    Unit,
    analyse_parent,
    analyse_tree,
    feature_collection,
    summary,
)
from geo.coverage_compare import mark_new, same_finding
from geo.settings import Settings

METRIC = "EPSG:4547"
X0, Y0 = crs.from_storage(114.9, 33.4, METRIC)  # metric origin of the test community
COMMUNITY = "419999001001"
TOL = Tolerances.from_settings(Settings(database_url=None))  # sliver 1 m, noise 0.01 m²


def storage(geometry: shapely.Geometry) -> shapely.Geometry:
    """A metric (EPSG:4547) geometry, relative to the origin, in storage lon/lat.

    Densified first: a straight metric edge is a curve in lon/lat, and a parent's 800 m edge
    converted by its ends alone would pass 8 mm beside its children's corners.
    """
    moved = shapely.transform(shapely.segmentize(geometry, 5.0), lambda xy: xy + np.array([X0, Y0]))
    return crs.geometry_to_storage(moved, METRIC)


def unit(code: str, geometry: shapely.Geometry, **facts) -> Unit:
    return Unit(code, storage(geometry), **facts)


def grid(n: int, geometry: shapely.Geometry, kind: str = "urban", **facts) -> Unit:
    return unit(f"{COMMUNITY}{n:03d}", geometry, kind=kind, **facts)


def quadrants(size: float = 400.0) -> list[shapely.Geometry]:
    """2×2 cells of a size×size square: NW, NE, SW, SE."""
    h = size / 2
    return [box(0, h, h, size), box(h, h, size, size), box(0, 0, h, h), box(h, 0, size, h)]


PARENT = unit(COMMUNITY, box(0, 0, 400, 400), kind="urban")


def kinds(findings: list[Finding]) -> list[tuple[str, tuple[str, ...]]]:
    return sorted((f.kind.value, f.units) for f in findings)


def test_a_clean_partition_has_no_findings():
    children = [grid(i, g) for i, g in enumerate(quadrants(), 1)]
    assert analyse_parent(PARENT, children, TOL) == []


def test_a_hole_inside_a_grid_is_a_gap_of_its_area():
    cells = quadrants()
    cells[0] = cells[0].difference(box(50, 250, 70, 280))  # 20 m × 30 m
    [gap] = analyse_parent(PARENT, [grid(i, g) for i, g in enumerate(cells, 1)], TOL)
    assert (gap.kind, gap.units) == (Kind.GAP, (COMMUNITY,))
    assert abs(gap.area_m2 - 600) < 1
    assert gap.geometry.within(storage(box(49, 249, 71, 281)))  # returned in storage lon/lat


def test_a_gap_along_a_shared_edge_and_a_sliver():
    cells = quadrants()
    cells[0] = box(0, 200, 195, 400)  # 5 m short of its eastern neighbour
    cells[3] = box(200, 0.4, 400, 200)  # 0.4 m short of the parent's southern edge: a sliver
    found = analyse_parent(PARENT, [grid(i, g) for i, g in enumerate(cells, 1)], TOL)
    by_kind = {f.kind: f for f in found}
    assert kinds(found) == [("gap", (COMMUNITY,)), ("sliver", (COMMUNITY,))]
    assert abs(by_kind[Kind.GAP].area_m2 - 5 * 200) < 1
    assert abs(by_kind[Kind.SLIVER].area_m2 - 0.4 * 200) < 1
    assert by_kind[Kind.SLIVER].detail["of"] == "gap"


def test_overlapping_siblings_and_a_child_outside_its_parent():
    cells = quadrants()
    cells[0] = box(0, 200, 210, 400)  # 10 m into grid 2
    cells[1] = box(200, 200, 400, 420)  # 20 m beyond the parent's northern edge
    found = analyse_parent(PARENT, [grid(i, g) for i, g in enumerate(cells, 1)], TOL)
    g1, g2 = f"{COMMUNITY}001", f"{COMMUNITY}002"
    assert kinds(found) == [("outside_parent", (g2, COMMUNITY)), ("overlap", (g1, g2))]
    areas = {f.kind: f.area_m2 for f in found}
    assert abs(areas[Kind.OVERLAP] - 10 * 200) < 1
    assert abs(areas[Kind.OUTSIDE_PARENT] - 20 * 200) < 1


def test_special_grids_overlay_but_must_stay_in_their_community():
    base = [grid(i, g) for i, g in enumerate(quadrants(), 1)]
    inside = grid(5, box(150, 150, 250, 250), "special")  # overlays four base grids: fine
    crossing = grid(6, box(350, 100, 430, 140), "special")  # 30 m × 40 m outside the community
    other = grid(7, box(200, 220, 240, 260), "special")  # overlaps special 5 by 40 × 30
    found = analyse_parent(PARENT, [*base, inside, crossing, other], TOL)
    g5, g6, g7 = (f"{COMMUNITY}{n:03d}" for n in (5, 6, 7))
    assert kinds(found) == [("overlap", (g5, g7)), ("special_outside_community", (g6, COMMUNITY))]
    areas = {f.kind: f.area_m2 for f in found}
    assert abs(areas[Kind.SPECIAL_OUTSIDE_COMMUNITY] - 30 * 40) < 1
    assert abs(areas[Kind.OVERLAP] - 40 * 30) < 1
    assert next(f for f in found if f.kind == Kind.OVERLAP).detail == {"between": "special"}


def test_micro_grids_of_a_special_grid_are_its_cover_not_an_overlay():
    special = grid(5, box(0, 0, 100, 100), "special")
    micro = [
        Unit(f"{special.code}00{i}", storage(g), kind="special")
        for i, g in enumerate([box(0, 0, 50, 100), box(50, 0, 100, 90)], 1)
    ]
    [gap] = analyse_parent(special, micro, TOL)
    assert gap.kind == Kind.GAP and abs(gap.area_m2 - 50 * 10) < 1


def test_people_and_size_norm_of_grids():
    cells = quadrants()
    children = [
        grid(1, cells[0], staff=frozenset({"grid_chief"}), party_cells=frozenset({"branch"}), households=300),
        grid(2, cells[1], staff=frozenset({"volunteer"}), party_cells=frozenset(), households=501),
        grid(
            3,
            cells[2],
            "rural",
            staff=frozenset({"full_time"}),
            party_cells=frozenset({"group"}),
            households=301,
        ),
        grid(4, cells[3], households=None),  # facts unknown: not judged
        grid(
            5,
            box(10, 10, 20, 20),
            "special",
            staff=frozenset(),
            party_cells=frozenset({"group"}),
            households=5,
        ),
    ]
    found = analyse_parent(PARENT, children, TOL)
    code = lambda n: f"{COMMUNITY}{n:03d}"  # noqa: E731
    assert kinds(found) == [
        ("no_party_cell", (code(2),)),
        ("no_staff", (code(2),)),
        ("no_staff", (code(5),)),
        ("size_norm", (code(2),)),
        ("size_norm", (code(3),)),
    ]
    size = {f.units[0]: f.detail for f in found if f.kind == Kind.SIZE_NORM}
    assert size[code(2)] == {"households": 501, "grid_kind": "urban", "norm": [300, 500]}
    assert size[code(3)]["norm"] == [0, 300]
    assert all(f.geometry is None and f.area_m2 is None for f in found)


def test_cases_in_a_gap():
    cells = quadrants()
    cells[0] = cells[0].difference(box(50, 250, 90, 290))
    lon, lat = storage(shapely.Point(70, 270)).coords[0]
    far_lon, far_lat = storage(shapely.Point(300, 300)).coords[0]
    cases = [CasePoint(7, lon, lat), CasePoint(8, far_lon, far_lat)]
    found = analyse_parent(PARENT, [grid(i, g) for i, g in enumerate(cells, 1)], TOL, cases=cases)
    [case] = [f for f in found if f.kind == Kind.CASE_IN_GAP]
    assert case.units == (COMMUNITY,) and case.detail == {"case_id": 7} and case.area_m2 is None
    assert case.geometry.equals(shapely.Point(lon, lat))


def test_a_tree_is_analysed_at_every_level_and_a_childless_community_is_a_gap():
    county = unit("419999", box(0, 0, 800, 400))
    streets = [unit("419999001", box(0, 0, 400, 400)), unit("419999002", box(400, 0, 790, 400))]
    communities = [PARENT, unit("419999002001", box(400, 0, 790, 400))]
    grids = [grid(i, g) for i, g in enumerate(quadrants(), 1)]
    found = analyse_tree([county, *streets, *communities, *grids], TOL)
    assert kinds(found) == [("gap", ("419999",)), ("gap", ("419999002001",))]
    assert sorted(round(f.area_m2) for f in found) == [10 * 400, 390 * 400]


def test_new_findings_are_told_from_known_ones():
    cells = quadrants()
    cells[0] = cells[0].difference(box(50, 250, 70, 280))
    before = analyse_parent(PARENT, [grid(i, g) for i, g in enumerate(cells, 1)], TOL)
    cells[0] = quadrants()[0].difference(box(52, 251, 72, 281))  # the same hole, redrawn a little
    cells[3] = cells[3].difference(box(250, 50, 280, 80))  # and a new one
    after = mark_new(analyse_parent(PARENT, [grid(i, g) for i, g in enumerate(cells, 1)], TOL), before)
    assert sorted(f.new for f in after) == [False, True]
    [known], [fresh] = [f for f in after if not f.new], [f for f in after if f.new]
    assert same_finding(known, before[0]) and not same_finding(fresh, before[0])
    assert summary(after)["gap"] == {"count": 2, "new": 1, "area_m2": round(sum(f.area_m2 for f in after), 2)}
    [feature, _] = feature_collection(after)["features"]
    assert set(feature["properties"]) >= {"kind", "units", "area_m2", "new"}
    assert feature["geometry"]["type"] == "Polygon"


# ---------------------------------------------------------------- random partitions


@st.composite
def damaged_partitions(draw):
    """A rows×cols partition of random row heights and column widths, with injected problems.

    Problems go only into cells whose row and column are both even, so no two interact: a hole
    inside a cell, a cell cut short at its east edge (gap or sliver), a cell grown north
    (overlap with the cell above, or outside the parent on the top row).
    """
    nrows, ncols = draw(st.integers(3, 6)), draw(st.integers(3, 6))
    heights = draw(st.lists(st.floats(40, 150), min_size=nrows, max_size=nrows))
    widths = draw(st.lists(st.floats(40, 150), min_size=ncols, max_size=ncols))
    ys, xs = np.concatenate([[0], np.cumsum(heights)]), np.concatenate([[0], np.cumsum(widths)])
    cells = {(r, c): box(xs[c], ys[r], xs[c + 1], ys[r + 1]) for r in range(nrows) for c in range(ncols)}
    number = {rc: n for n, rc in enumerate(sorted(cells), 1)}
    code = lambda rc: f"{COMMUNITY}{number[rc]:03d}"  # noqa: E731
    candidates = [(r, c) for r in range(0, nrows, 2) for c in range(0, ncols, 2)]
    chosen = draw(st.lists(st.sampled_from(candidates), unique=True, max_size=len(candidates)))
    expected = []
    for r, c in chosen:
        x0, y0, x1, y1 = cells[(r, c)].bounds
        what = draw(st.sampled_from(["hole", "gap", "sliver", "grow"]))
        if what == "hole":
            w, h = draw(st.floats(2, 20)), draw(st.floats(2, 20))
            hole = box(x0 + 10, y0 + 10, x0 + 10 + min(w, x1 - x0 - 20), y0 + 10 + min(h, y1 - y0 - 20))
            cells[(r, c)] = cells[(r, c)].difference(hole)
            expected.append(("gap", (COMMUNITY,), hole.area))
        elif what in ("gap", "sliver"):
            d = draw(st.floats(2, 20)) if what == "gap" else draw(st.floats(0.05, 0.8))
            cells[(r, c)] = box(x0, y0, x1 - d, y1)
            expected.append((what, (COMMUNITY,), d * (y1 - y0)))
        else:
            d = draw(st.floats(1.5, 30))
            cells[(r, c)] = box(x0, y0, x1, y1 + d)
            if r + 1 < nrows:
                expected.append(("overlap", tuple(sorted([code((r, c)), code((r + 1, c))])), d * (x1 - x0)))
            else:
                expected.append(("outside_parent", (code((r, c)), COMMUNITY), d * (x1 - x0)))
    parent = unit(COMMUNITY, box(0, 0, xs[-1], ys[-1]))
    children = [grid(number[rc], g) for rc, g in cells.items()]
    return parent, children, sorted(expected)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_partitions())
def test_exactly_the_injected_problems_are_found_with_their_areas(case):
    parent, children, expected = case
    found = sorted((f.kind.value, f.units, f.area_m2) for f in analyse_parent(parent, children, TOL))
    assert [(k, u) for k, u, _ in found] == [(k, u) for k, u, _ in expected], found
    for (_, _, got), (_, _, want) in zip(found, expected, strict=True):
        assert abs(got - want) < 1, (got, want)


def test_top_level_units_are_checked_against_each_other_for_overlaps_only():
    from geo.coverage_totals import analyse_roots, totals
    from tests import factories as f

    half = f.SIZE / 2
    west = Unit("419997", box(f.X0, f.Y0, f.X0 + half + 0.001, f.Y0 + f.SIZE))
    east = Unit("419998", box(f.X0 + half, f.Y0, f.X0 + f.SIZE, f.Y0 + f.SIZE))
    far = Unit("419999", box(f.X0 + 1, f.Y0, f.X0 + 1.01, f.Y0 + 0.01))  # no neighbour at all
    found = analyse_roots([east, far, west], TOL)
    assert [(x.kind, x.units) for x in found] == [(Kind.OVERLAP, ("419997", "419998"))]
    assert totals(found)["overlap"]["county"]["count"] == 1
    touching = Unit("419998", box(f.X0 + half + 0.001, f.Y0, f.X0 + f.SIZE, f.Y0 + f.SIZE))
    assert analyse_roots([west, touching], TOL) == []
