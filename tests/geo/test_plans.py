"""Draft plan edits, code allocation and validation (pure: no database)."""

from __future__ import annotations

import pytest
import shapely
from shapely.geometry import LineString, MultiLineString, Polygon, box

from geo.codes import Level
from geo.coverage import Tolerances
from geo.plan_edits import apply_edit, replay
from geo.plan_impact import estimate_counts, transfers
from geo.plan_validation import validate
from geo.plans import (
    CodeTaken,
    Edit,
    EditError,
    Operation,
    PlanState,
    allocate,
    changes,
    reading_order,
)
from geo.settings import Settings
from geo.validation import UnitFeature
from tests import factories as f

HALF = f.SIZE / 2
ROOT = box(f.X0, f.Y0, f.X0 + f.SIZE, f.Y0 + f.SIZE)
TOLERANCES = Tolerances.from_settings(Settings(database_url=None))


def grid(n: int, geometry, households: int = 400, population: int = 1100, kind: str = "urban") -> UnitFeature:
    return UnitFeature(
        f.grid_code(n),
        f"网格{n}",
        Level.GRID,
        shapely.MultiPolygon([geometry]),
        kind,
        None,
        households,
        population,
    )


def cells() -> dict[int, Polygon]:
    """The test community's 2×2 grids: 1 NW, 2 NE, 3 SW, 4 SE."""
    x, y = f.X0, f.Y0
    return {
        1: box(x, y + HALF, x + HALF, y + f.SIZE),
        2: box(x + HALF, y + HALF, x + f.SIZE, y + f.SIZE),
        3: box(x, y, x + HALF, y + HALF),
        4: box(x + HALF, y, x + f.SIZE, y + HALF),
    }


def base_units(**extra: UnitFeature) -> dict[str, UnitFeature]:
    units = {g.code: g for g in (grid(n, c) for n, c in cells().items())}
    units.update({u.code: u for u in extra.values()})
    return units


def start(base: dict[str, UnitFeature], taken: set[str] | None = None) -> PlanState:
    return PlanState(f.COMMUNITY, dict(base), set(base) | (taken or set()))


def edit(operation: str, geometry=None, **params) -> Edit:
    return Edit(Operation(operation), params, geometry)


def problems_of(base, state):
    return validate(base, estimate_counts(base, state), ROOT, TOLERANCES)


def kinds(problems) -> set[tuple[str, str]]:
    return {(p.kind, p.severity) for p in problems}


# ---------------------------------------------------------------- codes


def test_reading_order_is_rows_north_to_south_then_west_to_east():
    c = cells()
    assert reading_order([c[4], c[3], c[2], c[1]]) == [3, 2, 1, 0]  # 1 NW, 2 NE, 3 SW, 4 SE


def test_allocation_takes_the_lowest_numbers_never_used():
    taken = {f.grid_code(n) for n in (1, 2, 3, 5)}  # 005 retired: never again
    assert allocate(f.COMMUNITY, 3, taken) == [f.grid_code(4), f.grid_code(6), f.grid_code(7)]


def test_a_split_keeps_the_code_for_the_largest_piece_and_numbers_the_rest_in_reading_order():
    c4 = cells()[4]
    minx, miny, maxx, maxy = c4.bounds
    x = minx + 0.3 * (maxx - minx)  # west strip: 30 %
    y = maxy - 0.3 * (maxy - miny)  # north strip: 30 %
    cut = MultiLineString([[(x, miny - 0.01), (x, maxy + 0.01)], [(minx - 0.01, y), (maxx + 0.01, y)]])
    base = base_units()
    retired_005 = {f.grid_code(5)}  # used once, retired: skipped
    state, allocated = apply_edit(start(base, retired_005), edit("split", cut, code=f.grid_code(4)))
    # pieces: NW small, NE, SW, SE largest (keeps 004); new ones in reading order NW, NE, SW
    assert sorted(allocated) == [f.grid_code(6), f.grid_code(7), f.grid_code(8)]
    nw, ne, sw = (state.units[f.grid_code(n)].geometry.centroid for n in (6, 7, 8))
    assert nw.y > sw.y and ne.y > sw.y and nw.x < ne.x
    kept = state.units[f.grid_code(4)].geometry
    assert kept.area == pytest.approx(0.49 * c4.area)
    total = sum(state.units[code].geometry.area for code in [f.grid_code(4), *allocated])
    assert total == pytest.approx(c4.area)


def test_a_replay_reuses_the_codes_an_edit_allocated_and_refuses_when_one_was_used_since():
    line = LineString([(f.X0 + 0.005, f.Y0 + HALF - 0.01), (f.X0 + 0.005, f.Y0 + f.SIZE + 0.01)])
    base = base_units()
    _, allocated = apply_edit(start(base), edit("split", line, code=f.grid_code(1)))
    stored = edit("split", line, code=f.grid_code(1), allocated=allocated)
    again = replay(start(base), [stored])
    assert f.grid_code(5) in again.units
    with pytest.raises(CodeTaken) as taken:
        replay(start(base, {f.grid_code(5)}), [stored])
    assert taken.value.code == f.grid_code(5)


def test_a_line_that_does_not_cross_the_grid_is_refused():
    inside = LineString([(f.X0 + 0.001, f.Y0 + HALF + 0.001), (f.X0 + 0.002, f.Y0 + HALF + 0.002)])
    with pytest.raises(EditError, match="does not cut"):
        apply_edit(start(base_units()), edit("split", inside, code=f.grid_code(1)))


# ---------------------------------------------------------------- merge, move, create, retire


def test_merge_keeps_the_lowest_code_adds_the_counts_and_retires_the_others():
    base = base_units()
    state, _ = apply_edit(start(base), edit("merge", codes=[f.grid_code(2), f.grid_code(1)]))
    merged = state.units[f.grid_code(1)]
    assert f.grid_code(2) not in state.units and state.successors == {f.grid_code(2): f.grid_code(1)}
    assert merged.households == 800 and merged.population == 2200
    assert merged.geometry.area == pytest.approx(2 * cells()[1].area)
    assert [c.change for c in changes(base, state)] == ["changed", "retired"]
    assert kinds(problems_of(base, state)) == {("size_norm", "warning")}  # 800 households > 500


def test_moving_a_micro_grid_recodes_it_under_its_new_grid_and_moves_its_area():
    c1 = cells()[1]
    east_half = box(f.X0 + HALF / 2, f.Y0 + HALF, f.X0 + HALF, f.Y0 + f.SIZE)
    micro = UnitFeature(
        f.grid_code(1) + "002", "微网格", Level.MICRO_GRID, shapely.MultiPolygon([east_half]), "urban"
    )
    base = base_units(m=micro)
    state, allocated = apply_edit(start(base), edit("move", code=micro.code, to=f.grid_code(2)))
    assert allocated == [f.grid_code(2) + "001"]
    assert state.successors[micro.code] == f.grid_code(2) + "001"
    assert state.units[f.grid_code(1)].geometry.area == pytest.approx(c1.area / 2)
    assert state.units[f.grid_code(2)].geometry.area == pytest.approx(1.5 * c1.area)
    assert [p for p in problems_of(base, state) if p.severity == "error"] == []


def test_create_carves_the_new_grid_out_of_its_neighbours_without_gaps_or_overlaps():
    middle = box(f.X0 + 0.015, f.Y0 + 0.015, f.X0 + 0.025, f.Y0 + 0.025)
    base = base_units()
    state, allocated = apply_edit(start(base), edit("create", middle, name="新网格", kind="urban"))
    assert allocated == [f.grid_code(5)]
    assert all(not state.units[f.grid_code(n)].geometry.intersects(middle.buffer(-1e-9)) for n in range(1, 5))
    estimated = estimate_counts(base, state)
    assert estimated.units[f.grid_code(1)].households == 375  # gave 1/16 of its area
    assert [p for p in validate(base, estimated, ROOT, TOLERANCES) if p.severity == "error"] == []


def test_retiring_a_grid_without_a_successor_leaves_a_new_gap_and_into_a_neighbour_does_not():
    base = base_units()
    alone, _ = apply_edit(start(base), edit("retire", code=f.grid_code(4)))
    gaps = [p for p in problems_of(base, alone) if p.kind == "gap"]
    assert len(gaps) == 1 and gaps[0].area_m2 == pytest.approx(_area_m2(cells()[4]), rel=1e-3)
    into, _ = apply_edit(start(base), edit("retire", code=f.grid_code(4), into=f.grid_code(3)))
    assert into.units[f.grid_code(3)].households == 800
    assert not [p for p in problems_of(base, into) if p.severity == "error"]


# ---------------------------------------------------------------- validation


def _area_m2(geometry) -> float:
    from geo import crs

    return crs.to_metric(geometry, crs.metric_crs_for(geometry.centroid.x)).area


def test_validation_names_each_kind_of_problem_with_its_location():
    base = base_units()
    x, y = f.X0, f.Y0
    bow_tie = Polygon([(x, y + HALF), (x + HALF, y + f.SIZE), (x + HALF, y + HALF), (x, y + f.SIZE)])
    cases = {
        "invalid_geometry": edit("replace", bow_tie, code=f.grid_code(1)),
        # 001 grows 0.005° west, beyond the community
        "outside_parent": edit(
            "replace", box(x - 0.005, y + HALF, x + HALF, y + f.SIZE), code=f.grid_code(1)
        ),
        # 001 shrinks: its west strip is covered by nobody
        "gap": edit("replace", box(x + 0.005, y + HALF, x + HALF, y + f.SIZE), code=f.grid_code(1)),
        # 001 grows east into 002
        "overlap": edit("replace", box(x, y + HALF, x + HALF + 0.005, y + f.SIZE), code=f.grid_code(1)),
        "size_norm": edit("replace", code=f.grid_code(1), households=900),
    }
    for kind, change in cases.items():
        state = replay(start(base), [change])
        found = problems_of(base, state)
        assert kind in {p.kind for p in found}, (kind, found)
        problem = next(p for p in found if p.kind == kind)
        assert (problem.geometry is not None and f.grid_code(1) in problem.units) or kind == "gap"
        if kind in ("outside_parent", "gap", "overlap"):
            strip = 0.005 * HALF  # the 0.005° strip along one side of the grid
            assert problem.area_m2 == pytest.approx(_area_m2(box(x, y, x + 0.005, y + HALF)), rel=1e-2)
            assert problem.geometry.area == pytest.approx(strip, rel=1e-3) and problem.severity == "error"
    invalid = next(p for p in problems_of(base, replay(start(base), [cases["invalid_geometry"]])))
    assert invalid.geometry.geom_type == "Point"  # where the polygon crosses itself


def test_a_gap_that_was_there_before_is_not_the_drafts_problem():
    c = cells()
    holed = grid(1, c[1].difference(box(f.X0 + 0.005, f.Y0 + 0.03, f.X0 + 0.01, f.Y0 + 0.035)))
    base = {**base_units(), holed.code: holed}
    # the draft moves the 002/004 boundary; the hole in 001 stays and is not reported
    y = f.Y0 + HALF + 0.002
    state = replay(
        start(base),
        [
            edit("replace", box(f.X0 + HALF, y, f.X0 + f.SIZE, f.Y0 + f.SIZE), code=f.grid_code(2)),
            edit("replace", box(f.X0 + HALF, f.Y0, f.X0 + f.SIZE, y), code=f.grid_code(4)),
        ],
    )
    assert [p for p in problems_of(base, state) if p.severity == "error"] == []


def test_transfers_say_what_changes_hands_with_people_by_area():
    base = base_units()
    y = f.Y0 + HALF + HALF / 4  # 002 gives its southern quarter to 004
    state = replay(
        start(base),
        [
            edit("replace", box(f.X0 + HALF, y, f.X0 + f.SIZE, f.Y0 + f.SIZE), code=f.grid_code(2)),
            edit("replace", box(f.X0 + HALF, f.Y0, f.X0 + f.SIZE, y), code=f.grid_code(4)),
        ],
    )
    moved = transfers(base, state)
    assert [(t.from_code, t.to_code) for t in moved] == [(f.grid_code(2), f.grid_code(4))]
    assert moved[0].households == pytest.approx(100, rel=1e-3)
    estimated = estimate_counts(base, state)
    assert estimated.units[f.grid_code(2)].households == 300
    assert estimated.units[f.grid_code(4)].households == 500
    assert estimated.estimated == {f.grid_code(2), f.grid_code(4)}
