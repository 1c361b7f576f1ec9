"""The role table (access/roles.py) pinned by hand: what each role may do, which lifecycle moves it
may make from each status, and where — written out here, not read from the table."""

from __future__ import annotations

import pytest

from access.roles import Permission, Role, User, moves_for
from cases.lifecycle import CaseStatus

ALL = {
    "read_units", "read_cases", "move_cases", "handle_cases", "read_personal", "read_stats", "plan",
    "read_audit", "read_party_points", "manage_users", "patrol",
}  # fmt: skip
PERMISSIONS: dict[str, set[str]] = {
    "admin": ALL,
    "planner": {"read_units", "read_cases", "read_stats", "plan"},
    "dispatcher": {"read_units", "read_cases", "move_cases", "read_personal", "read_stats", "patrol"},
    "field_worker": {"read_units", "read_cases", "handle_cases", "patrol"},
    "department": {"read_units", "read_cases", "handle_cases"},
    "viewer": {"read_units", "read_cases", "read_stats"},
}

# Every move of the lifecycle table, by status: what a dispatcher (and an admin) may make.
EVERY_MOVE: dict[str, set[str]] = {
    "reported": {"verified", "voided", "merged"},
    "verified": {"filed", "voided", "merged"},
    "filed": {"dispatched", "voided", "merged"},
    "dispatched": {"accepted", "returned", "reassigned"},
    "reassigned": {"accepted", "returned", "reassigned"},
    "accepted": {"in_progress", "returned", "reassigned", "suspended"},
    "in_progress": {"handled", "extended", "suspended", "returned", "reassigned"},
    "extended": {"handled", "suspended"},
    "suspended": {"in_progress"},
    "returned": {"dispatched", "reassigned", "voided"},
    "handled": {"checked", "in_progress"},
    "checked": {"closed"},
    "closed": {"revisited"},
    "revisited": set(),
    "voided": set(),
    "merged": set(),
}
# A handler (field worker, department) accepts, works, finishes or sends back what is in their
# hands; the check of a handled case (and its rework) is not theirs.
HANDLER_MOVES: dict[str, set[str]] = {
    "dispatched": {"accepted", "returned"},
    "reassigned": {"accepted", "returned"},
    "accepted": {"in_progress", "returned"},
    "in_progress": {"handled", "returned"},
    "extended": {"handled"},
    "suspended": {"in_progress"},
}
MOVES: dict[str, dict[str, set[str]]] = {
    "admin": EVERY_MOVE,
    "dispatcher": EVERY_MOVE,
    "field_worker": HANDLER_MOVES,
    "department": HANDLER_MOVES,
    "planner": {},
    "viewer": {},
}

STREET, COMMUNITY, GRID = "330102001", "330102001001", "330102001001001"


def user(role: str, unit: str = COMMUNITY, department: str | None = None) -> User:
    return User(1, "u", Role(role), unit, department)


def test_each_role_has_exactly_the_pinned_permissions():
    assert sorted(r.value for r in Role) == sorted(PERMISSIONS)
    assert {p.value for p in Permission} == ALL
    for role, granted in PERMISSIONS.items():
        assert {p.value for p in Permission if user(role).can(p)} == granted, role


@pytest.mark.parametrize("role", list(MOVES))
def test_each_role_makes_exactly_the_pinned_moves_from_each_status(role):
    for status in CaseStatus:
        expected = MOVES[role].get(status.value, set())
        assert set(moves_for(user(role), status)) == expected, (role, status)


def test_jurisdiction_is_the_unit_and_below_and_departments_are_summoned_from_a_street_up():
    worker = user("field_worker", GRID)
    assert worker.covers(GRID) and worker.covers(GRID + "001") and not worker.covers(COMMUNITY)
    assert not worker.covers(None) and not worker.covers("330102001001002")
    dispatcher = user("dispatcher", COMMUNITY)
    assert dispatcher.may_hand_to(GRID, ["cgj"]) and dispatcher.may_hand_to(STREET, ["cgj"])  # up the chain
    assert not dispatcher.may_hand_to("330102001002", ["cgj"])  # a sibling community
    assert not dispatcher.may_hand_to("cgj", ["cgj"])  # a community does not summon a department
    assert user("dispatcher", STREET).may_hand_to("cgj", ["cgj"])
    assert user("admin", GRID).may_hand_to("cgj", ["cgj"])
    # A case is seen where it lies (its unit or grid), by its department, or at county level if nowhere.
    assert dispatcher.may_see_case(None, GRID, None) and not dispatcher.may_see_case(STREET, None, None)
    department = user("department", "330102", "cgj")
    assert department.may_see_case(None, None, "cgj") and not department.may_see_case("330102", None, None)
    assert user("viewer", "330102").may_see_case(None, None, None)
    assert not user("viewer", STREET).may_see_case(None, None, None)
