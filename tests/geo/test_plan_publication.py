"""What a publish does, computed from the draft alone (geo.plan_publication; pure: no database)."""

from __future__ import annotations

from types import SimpleNamespace

import shapely
from shapely.geometry import LineString, box

from geo import plan_publication as pub
from geo.codes import Level
from geo.plan_edits import apply_edit
from geo.plans import Edit, Operation, PlanState
from geo.validation import UnitFeature
from tests import factories as f

HALF = f.SIZE / 2
X, Y = f.X0, f.Y0
CELLS = {  # the test community's 2×2 grids: 1 NW, 2 NE, 3 SW, 4 SE
    1: box(X, Y + HALF, X + HALF, Y + f.SIZE),
    2: box(X + HALF, Y + HALF, X + f.SIZE, Y + f.SIZE),
    3: box(X, Y, X + HALF, Y + HALF),
    4: box(X + HALF, Y, X + f.SIZE, Y + HALF),
}


def base() -> dict[str, UnitFeature]:
    return {
        f.grid_code(n): UnitFeature(
            f.grid_code(n), f"网格{n}", Level.GRID, shapely.MultiPolygon([c]), "urban", None, 400, 1100
        )
        for n, c in CELLS.items()
    }


def draft(*edits: Edit) -> tuple[dict[str, UnitFeature], PlanState, list[dict]]:
    """The base, the state after the edits, and the edits' params as stored (with their allocations)."""
    units = base()
    state = PlanState(f.COMMUNITY, dict(units), set(units))
    stored = []
    for e in edits:
        state, allocated = apply_edit(state, e)
        stored.append({**e.params, "allocated": allocated})
    return units, state, stored


def split_grid_1() -> Edit:
    cut = LineString([(X + 0.006, Y + HALF - 0.001), (X + 0.006, Y + f.SIZE + 0.001)])
    return Edit(Operation.SPLIT, {"code": f.grid_code(1)}, cut)


def merge_3_into_4() -> Edit:
    return Edit(Operation.MERGE, {"codes": [f.grid_code(3), f.grid_code(4)], "into": f.grid_code(4)})


def test_a_split_writes_the_kept_piece_and_the_new_one_and_retires_nothing():
    units, state, _ = draft(split_grid_1())
    publication = pub.publication(7, units, state)
    assert [u.code for u in publication.write] == [f.grid_code(1), f.grid_code(5)]
    assert publication.retire == []


def test_a_merge_retires_the_absorbed_grid_and_notes_estimates_with_the_plan():
    units, state, _ = draft(merge_3_into_4())
    state.estimated.add(f.grid_code(4))
    publication = pub.publication(7, units, state)
    assert publication.retire == [f.grid_code(3)]
    assert [u.code for u in publication.write] == [f.grid_code(4)]
    assert publication.warnings == {
        f.grid_code(4): ["households and population estimated by area share (plan 7)"]
    }


def test_touched_names_existing_units_not_the_codes_the_draft_allocated_nor_its_root():
    units, state, stored = draft(split_grid_1(), merge_3_into_4())
    assert pub.touched(stored, units, state) == {f.grid_code(1), f.grid_code(3), f.grid_code(4)}


def test_conflicts_say_what_happened_to_each_unit_since_the_draft_was_opened():
    found = pub.conflicts(["a", "b", "c", "d"], {"a": 1, "b": 2, "c": 1}, {"a": 1, "b": 3, "c": None, "d": 1})
    assert [(c["code"], c["base_version"], c["current_version"], c["reason"]) for c in found] == [
        ("b", 2, 3, "changed since the draft was opened (version 2 → 3)"),
        ("c", 1, None, "retired since the draft was opened"),
        ("d", None, 1, "created since the draft was opened"),
    ]
    message = pub.conflict_message(9, [{**found[0], "by_plan": 4, "by_plan_title": "东移"}])
    assert message == (
        "plan 9 conflicts with changes published since it was opened: "
        "b changed since the draft was opened (version 2 → 3) by plan 4 (东移)"
    )


def test_people_follow_their_unit_a_central_household_its_point():
    _, state, _ = draft(merge_3_into_4(), split_grid_1())
    in_new_piece = shapely.Point(X + 0.003, Y + HALF + 0.005)  # west of the cut: the new grid 5
    cells = [
        SimpleNamespace(id=1, kind="central_household", unit_code=f.grid_code(1),
                        lon=in_new_piece.x, lat=in_new_piece.y),
        SimpleNamespace(id=2, kind="branch", unit_code=f.grid_code(3), lon=None, lat=None),
        SimpleNamespace(id=3, kind="branch", unit_code=f.grid_code(2), lon=None, lat=None),
    ]  # fmt: skip
    staff = [
        SimpleNamespace(id=10, role="grid_chief", unit_code=f.grid_code(3)),
        SimpleNamespace(id=11, role="grid_chief", unit_code=f.grid_code(1)),
    ]
    cell_moves, staff_moves = pub.people_moves(state, cells, staff)
    assert cell_moves == [
        {"id": 1, "kind": "central_household", "from": f.grid_code(1), "to": f.grid_code(5)},
        {"id": 2, "kind": "branch", "from": f.grid_code(3), "to": f.grid_code(4)},
    ]
    assert staff_moves == [{"id": 10, "role": "grid_chief", "from": f.grid_code(3), "to": f.grid_code(4)}]


def test_a_successor_is_followed_through_retirements_and_a_plain_retirement_has_none():
    state = PlanState("r", {"c": None}, set(), retired={"a", "b", "x"}, successors={"a": "b", "b": "c"})
    assert pub.successor(state, "a") == "c"
    assert pub.successor(state, "x") is None
    assert pub.successor(state, "c") == "c"


def test_the_impact_counts_cases_and_people_before_and_after_per_unit():
    units, state, _ = draft(split_grid_1())
    g1, g5 = f.grid_code(1), f.grid_code(5)
    moves = {
        "cases": [{"from": {"grid": g1}, "to": {"grid": g5}}],
        "party_cells": [{"id": 1, "from": g1, "to": g5}],
        "staff": [],
    }
    rows = pub.unit_impact(units, state, moves, {g1: 3}, {("party_cells", g1): 2, ("staff", g1): 1})
    by_code = {r["code"]: r for r in rows}
    assert sorted(by_code) == [g1, g5]
    assert by_code[g1]["change"] == "changed" and by_code[g5]["change"] == "created"
    assert by_code[g1]["open_cases"] == {"before": 3, "after": 2}
    assert by_code[g5]["open_cases"] == {"before": 0, "after": 1}
    assert by_code[g1]["party_cells"] == {"before": 2, "after": 1}
    assert by_code[g5]["party_cells"] == {"before": 0, "after": 1}
    assert by_code[g1]["staff"] == {"before": 1, "after": 1}
    assert by_code[g1]["households"] == {"before": 400, "after": 400}  # not estimated here


def test_change_rows_and_the_audit_summary():
    rows = pub.change_rows(["n"], ["c"], ["r"], {"c": 2, "r": 1}, {"n": 1, "c": 3})
    assert rows == [
        {"code": "n", "change": "created", "old": None, "new": 1},
        {"code": "c", "change": "changed", "old": 2, "new": 3},
        {"code": "r", "change": "retired", "old": 1, "new": None},
    ]
    result = {"created": ["n"], "changed": ["c"], "retired": ["r"], "cases": [{}, {}], "staff": []}
    assert pub.audit_summary(result) == {"created": ["n"], "changed": ["c"], "retired": ["r"], "cases": 2}
