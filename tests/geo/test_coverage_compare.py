"""Comparing findings with an earlier report (geo.coverage_compare): new, resolved, unchanged."""

from __future__ import annotations

from shapely.geometry import box

from geo.coverage import CasePoint, Kind, analyse_parent
from geo.coverage_compare import compare, summary_with_resolved
from tests.geo.test_coverage import PARENT, TOL, grid, quadrants


def _findings(holes: dict[int, tuple[float, float, float, float]], facts: dict | None = None):
    """The findings of the 2×2 quadrants with a hole cut in some of them (index -> metric box)."""
    cells = quadrants()
    for i, hole in holes.items():
        cells[i] = cells[i].difference(box(*hole))
    facts = facts or {}
    return analyse_parent(PARENT, [grid(i + 1, g, **facts.get(i, {})) for i, g in enumerate(cells)], TOL)


def test_moved_shapes_stay_a_new_one_is_new_and_a_removed_one_is_resolved():
    before = _findings({0: (50, 250, 70, 280), 3: (250, 50, 280, 80)})
    # Hole 0 redrawn a little (moved 2 m), hole 3 filled, a new hole in quadrant 1.
    after = _findings({0: (52, 251, 72, 281), 1: (300, 300, 330, 330)})
    result = compare(after, before)
    assert sorted((f.kind.value, f.new) for f in result.findings) == [("gap", False), ("gap", True)]
    [fresh] = [f for f in result.findings if f.new]
    assert fresh.geometry.intersects(grid(2, box(300, 300, 330, 330)).geometry)
    [gone] = result.resolved
    assert gone.kind == Kind.GAP and gone.new is None
    assert gone.geometry.equals_exact(
        next(f for f in before if f.geometry.intersects(grid(4, box(250, 50, 280, 80)).geometry)).geometry, 0
    )
    assert result.unchanged == 1
    assert result.summary()["gap"]["count"] == 2
    assert {k: result.summary()["gap"][k] for k in ("new", "resolved")} == {"new": 1, "resolved": 1}
    answer = result.as_dict()
    assert [len(answer[k]["features"]) for k in ("new", "resolved")] == [1, 1] and answer["unchanged"] == 1


def test_a_hole_moved_far_away_is_one_resolved_and_one_new():
    before = _findings({0: (50, 250, 70, 280)})
    after = _findings({0: (120, 320, 140, 350)})  # same grid, same kind, another place
    result = compare(after, before)
    assert [f.new for f in result.findings] == [True] and len(result.resolved) == 1


def test_findings_without_a_shape_are_resolved_by_their_grid_and_kind():
    people = {"kind": "rural", "households": 100, "party_cells": frozenset({"branch"})}
    staffed, nobody = {**people, "staff": frozenset({"grid_chief"})}, {**people, "staff": frozenset()}
    before = _findings({}, {0: nobody, 1: nobody, 2: staffed, 3: staffed})
    after = _findings({}, {0: staffed, 1: nobody, 2: staffed, 3: nobody})
    result = compare(after, before)
    assert sorted((f.units[0][-3:], f.new) for f in result.findings) == [("002", False), ("004", True)]
    assert [(f.kind, f.units[0][-3:]) for f in result.resolved] == [(Kind.NO_STAFF, "001")]
    assert summary_with_resolved(result.findings, result.resolved)["no_staff"] == {
        "count": 2,
        "new": 1,
        "resolved": 1,
    }


def test_a_case_in_a_gap_is_resolved_when_the_case_is_no_longer_there():
    hole = {0: (50, 250, 70, 280)}
    inside = grid(1, box(60, 260, 61, 261)).geometry.centroid
    case = CasePoint(7, inside.x, inside.y)
    cells = quadrants()
    cells[0] = cells[0].difference(box(*hole[0]))
    kids = [grid(i, g) for i, g in enumerate(cells, 1)]
    before = analyse_parent(PARENT, kids, TOL, cases=[case])
    after = analyse_parent(PARENT, kids, TOL)
    result = compare(after, before)
    assert [f.new for f in result.findings] == [False]
    assert [(f.kind, f.detail["case_id"]) for f in result.resolved] == [(Kind.CASE_IN_GAP, 7)]


def test_with_no_earlier_report_all_is_new_and_nothing_resolved():
    result = compare(_findings({0: (50, 250, 70, 280)}), [])
    assert [f.new for f in result.findings] == [True] and result.resolved == [] and result.unchanged == 0
