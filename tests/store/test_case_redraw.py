"""A publish reassigns its moved cases set-based: each stores store.locate's own answer for its
point (cases at one place share one answer, sent once), gets its history entry, and the live feed
gets one event per moved case from the statement that moved them all."""

from __future__ import annotations

from shapely.geometry import mapping
from sqlalchemy import text

from store.locate import locate
from tests import factories as f
from tests.api.test_plans import CUT_001, EAST_OF_001, PLANNER, WEST_OF_001, add, open_plan, report

ELSEWHERE_IN_STRIP = (WEST_OF_001[0] - 0.002, WEST_OF_001[1] + 0.004)


def test_moved_cases_store_the_single_answer_and_one_event_each(client, session, settings, county):
    same_place = [report(client, WEST_OF_001) for _ in range(3)]
    elsewhere = report(client, ELSEWHERE_IN_STRIP)
    stays = report(client, EAST_OF_001)
    plan = open_plan(client)
    add(client, plan, operation="split", code=f.grid_code(1), geometry=mapping(CUT_001))
    last_event = session.execute(text("SELECT max(id) FROM case_events")).scalar()

    published = client.post(f"/plans/{plan}/publish", headers=PLANNER)
    assert published.status_code == 200, published.text
    moved_ids = sorted(c["id"] for c in [*same_place, elsewhere])
    assert [c["id"] for c in published.json()["cases"]] == moved_ids

    new_grid = f.grid_code(5)
    for case, point in [*((c, WEST_OF_001) for c in same_place), (elsewhere, ELSEWHERE_IN_STRIP)]:
        stored = session.execute(
            text("SELECT assignment, grid_code, unit_code, assign_status FROM cases WHERE id = :id"),
            {"id": case["id"]},
        ).one()
        single = locate(session, *point, tolerance_m=settings.snap_tolerance_m)
        assert stored.assignment == single.as_dict()
        assert (stored.grid_code, stored.unit_code, stored.assign_status) == (new_grid, new_grid, "assigned")
        history = client.get(f"/cases/{case['id']}").json()["history"]
        assert [h["action"] for h in history].count("redraw") == 1
    untouched = session.execute(text("SELECT grid_code FROM cases WHERE id = :id"), {"id": stays["id"]})
    assert untouched.scalar() == f.grid_code(1)

    # One 'updated' event per moved case, in id order, each with the case's new grid.
    events = session.execute(
        text("SELECT case_id, kind, body FROM case_events WHERE id > :last ORDER BY id"), {"last": last_event}
    ).all()
    assert [(e.case_id, e.kind) for e in events] == [(i, "updated") for i in moved_ids]
    assert {e.body["grid_code"] for e in events} == {new_grid}
    assert all(e.body["id"] == e.case_id and e.body["unit_code"] == new_grid for e in events)


def test_a_case_no_grid_covered_moves_with_its_holder_when_a_grid_now_does(client, session, county):
    # A case held in the unassigned queue by its lowest unit (as reported before the grid was
    # drawn): no grid, the community holds it, its stored chain ends at the community.
    case = report(client, WEST_OF_001)
    session.execute(
        text(
            """UPDATE cases SET grid_code = NULL, grid_version = NULL, assign_status = 'unassigned',
                   tier = 'community', unit_code = :community,
                   assignment = jsonb_set(assignment, '{units}', (assignment -> 'units') - -1)
               WHERE id = :id"""
        ),
        {"id": case["id"], "community": f.COMMUNITY},
    )
    plan = open_plan(client)
    add(client, plan, operation="split", code=f.grid_code(1), geometry=mapping(CUT_001))
    published = client.post(f"/plans/{plan}/publish", headers=PLANNER)
    assert [c["id"] for c in published.json()["cases"]] == [case["id"]]
    moved = client.get(f"/cases/{case['id']}").json()
    # The holder was where the rule put the case (its lowest unit), so it follows the new grid.
    assert (moved["grid_code"], moved["tier"], moved["unit_code"]) == (f.grid_code(5), "grid", f.grid_code(5))
