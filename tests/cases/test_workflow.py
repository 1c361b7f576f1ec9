"""What a move, an escalation and a redraw change (cases.workflow): pure, no database.

Expectations are written out by hand from the category table (0101 暴露垃圾: accept 1h, handle
1d, revisit 5d), the working calendar (08:30-12:00, 14:00-17:30; 3 March 2025 is a Monday) and the
code format, not derived from the functions under test.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from cases.categories import CategoryTable
from cases.lifecycle import CaseStatus, IllegalMove, MissingNeeds, Move, Rating, Tier
from cases.model import StageClock
from cases.rules import Rules
from cases.workflow import (
    SYSTEM,
    CaseState,
    Found,
    Holder,
    InvalidTarget,
    apply_move,
    escalate,
    redraw,
)
from cases.worktime import WorkCalendar
from geo.assignment import Assignment, GridRef, Rule, Status
from geo.settings import PROJECT_DIR

BEIJING = ZoneInfo("Asia/Shanghai")
MONDAY_10 = datetime(2025, 3, 3, 10, 0, tzinfo=BEIJING)
COUNTY, STREET, COMMUNITY = "411681", "411681001", "411681001002"
GRID, OTHER_GRID = "411681001002014", "411681001002015"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=BEIJING)


@pytest.fixture(scope="module")
def rules() -> Rules:
    data = PROJECT_DIR / "data"
    return Rules(
        categories=CategoryTable.load(data / "categories.csv"),
        calendar=WorkCalendar.load(data / "calendar" / "china.csv"),
        departments={"cgj": "城市管理局"},
    )


def case(status: CaseStatus, tier: Tier = Tier.GRID, unit: str | None = GRID, **more) -> CaseState:
    """A case of category 0101 in `status`, held by `unit` at `tier`, reported inside GRID."""
    return CaseState(
        id=7, status=status, category="0101", urgent=False, tier=tier, unit_code=unit,
        grid_code=more.pop("grid_code", GRID), **more,
    )  # fmt: skip


def test_dispatching_a_grid_case_starts_the_accept_clock_at_its_grid(rules):
    change = apply_move(case(CaseStatus.FILED), Move(CaseStatus.DISPATCHED), rules, MONDAY_10, actor="d1")
    assert change.status == CaseStatus.DISPATCHED
    assert change.holder == Holder(Tier.GRID, GRID, None)
    # accept: 1 working hour, yellow at 80 % of it (48 min)
    assert change.clock == StageClock("accept", MONDAY_10, at(3, 10, 48), at(3, 11))
    entry = change.entry
    assert (entry.actor, entry.action, entry.from_status) == ("d1", "dispatched", CaseStatus.FILED)
    assert change.entry.details == {} and change.fields == {} and change.then is None


def test_a_street_summons_a_department_and_a_grid_may_not(rules):
    move = Move(CaseStatus.REASSIGNED, reason="需部门处置", unit="cgj")
    street_case = case(CaseStatus.DISPATCHED, Tier.STREET, STREET)
    change = apply_move(street_case, move, rules, MONDAY_10, actor="s1")
    assert change.holder == Holder(Tier.DEPARTMENT, STREET, "cgj")
    assert change.entry.details == {"target": "cgj", "reason": "需部门处置"}
    assert change.entry.note == "需部门处置"  # the reason stands for a missing note
    with pytest.raises(InvalidTarget, match="escalate it first"):
        apply_move(case(CaseStatus.DISPATCHED), move, rules, MONDAY_10, actor="g1")


def test_reassigning_to_a_unit_takes_its_tier_and_an_unknown_code_is_refused(rules):
    move = Move(CaseStatus.REASSIGNED, reason="跨社区", unit=COMMUNITY)
    change = apply_move(
        case(CaseStatus.ACCEPTED), move, rules, MONDAY_10, actor="c1", found=Found(unit_level="community")
    )
    assert change.holder == Holder(Tier.COMMUNITY, COMMUNITY, None)
    with pytest.raises(InvalidTarget, match="neither a current unit code nor a department"):
        apply_move(case(CaseStatus.ACCEPTED), move, rules, MONDAY_10, actor="c1", found=Found())


def test_an_extension_pushes_the_due_time_back_by_working_days(rules):
    handling = StageClock("handle", MONDAY_10, at(4, 8, 36), at(4, 10))
    move = Move(CaseStatus.EXTENDED, reason="等材料", extend_by="2d")
    change = apply_move(case(CaseStatus.IN_PROGRESS, clock=handling), move, rules, at(4, 9), actor="g1")
    # Tuesday 10:00 + 2 working days = Thursday 10:00; 21 working hours in all, yellow after 16.8 h
    assert change.clock == StageClock("handle", MONDAY_10, at(5, 14, 48), at(6, 10))
    assert change.entry.details == {"reason": "等材料", "extend_by": "2d"}
    assert change.entry.left == handling
    with pytest.raises(InvalidTarget):
        apply_move(case(CaseStatus.IN_PROGRESS, clock=handling), Move(CaseStatus.EXTENDED, reason="x",
                   extend_by="soon"), rules, at(4, 9), actor="g1")  # fmt: skip


def test_closing_records_the_time_and_starts_the_revisit_clock(rules):
    change = apply_move(case(CaseStatus.CHECKED), Move(CaseStatus.CLOSED), rules, MONDAY_10, actor="d1")
    assert change.fields == {"closed_at": MONDAY_10}
    assert (change.clock.stage, change.clock.due_at) == ("revisit", at(10, 10))  # 5 working days


def test_an_unsatisfied_revisit_reopens_the_case_for_rework(rules):
    move = Move(CaseStatus.REVISITED, rating=Rating.UNSATISFIED)
    change = apply_move(case(CaseStatus.CLOSED), move, rules, MONDAY_10, actor="d1")
    assert (change.status, change.fields, change.clock) == (
        CaseStatus.REVISITED, {"rating": "unsatisfied"}, StageClock(None)
    )
    reopened = change.then
    assert reopened is not None and reopened.then is None
    assert (reopened.status, reopened.fields) == (CaseStatus.IN_PROGRESS, {"closed_at": None})
    assert (reopened.clock.stage, reopened.clock.due_at) == ("handle", at(4, 10))
    assert (reopened.entry.actor, reopened.entry.action, reopened.entry.from_status) == (
        SYSTEM, "reopen", CaseStatus.REVISITED
    )
    satisfied = apply_move(case(CaseStatus.CLOSED), Move(CaseStatus.REVISITED, rating=Rating.SATISFIED),
                           rules, MONDAY_10, actor="d1")  # fmt: skip
    assert satisfied.then is None


def test_merging_needs_another_live_case(rules):
    reported = case(CaseStatus.REPORTED)
    change = apply_move(reported, Move(CaseStatus.MERGED, into=9), rules, MONDAY_10, actor="d1",
                        found=Found(merge_status=CaseStatus.FILED))  # fmt: skip
    assert change.fields == {"merged_into": 9} and change.entry.details == {"into": 9}
    with pytest.raises(InvalidTarget, match="into itself"):
        apply_move(reported, Move(CaseStatus.MERGED, into=7), rules, MONDAY_10, actor="d1",
                   found=Found(merge_status=CaseStatus.REPORTED))  # fmt: skip
    with pytest.raises(InvalidTarget, match="case 9 is voided"):
        apply_move(reported, Move(CaseStatus.MERGED, into=9), rules, MONDAY_10, actor="d1",
                   found=Found(merge_status=CaseStatus.VOIDED))  # fmt: skip


def test_moves_outside_the_table_or_without_their_needs_are_refused(rules):
    with pytest.raises(IllegalMove):
        apply_move(case(CaseStatus.REPORTED), Move(CaseStatus.CLOSED), rules, MONDAY_10, actor="d1")
    with pytest.raises(MissingNeeds, match="reason"):
        apply_move(case(CaseStatus.REPORTED), Move(CaseStatus.VOIDED), rules, MONDAY_10, actor="d1")


@pytest.mark.parametrize(
    ("tier", "unit", "department", "expected"),
    [
        (Tier.GRID, GRID, None, Holder(Tier.COMMUNITY, COMMUNITY)),
        (Tier.COMMUNITY, COMMUNITY, None, Holder(Tier.STREET, STREET)),
        (Tier.STREET, STREET, None, Holder(Tier.COUNTY, COUNTY)),
        (Tier.DEPARTMENT, STREET, "cgj", Holder(Tier.COUNTY, COUNTY)),  # back to the county centre
        (Tier.GRID, None, None, Holder(Tier.COMMUNITY, COMMUNITY)),  # its grid's community
    ],
)
def test_escalation_goes_one_tier_up(rules, tier, unit, department, expected):
    accepting = StageClock("accept", at(1, 9), at(1, 9, 48), at(1, 10))
    overdue = case(CaseStatus.DISPATCHED, tier, unit, department=department, clock=accepting, escalations=1)
    change = escalate(overdue, rules, MONDAY_10)
    assert change.holder == expected
    assert (change.status, change.fields) == (CaseStatus.DISPATCHED, {"escalations": 2})
    assert change.clock == StageClock("accept", MONDAY_10, at(3, 10, 48), at(3, 11))
    assert change.entry.note == f"overdue at the accept stage: escalated to the {expected.tier} tier"
    assert change.entry.details == {"from_tier": tier.value, "from_unit": unit, "from_department": department}
    assert change.entry.left == accepting


def assignment_to(grid: str) -> Assignment:
    return Assignment(Status.ASSIGNED, Rule.COVERS, GridRef(grid, "新网格", "urban", 3), 0.0, [], None,
                      explanation="inside")  # fmt: skip


def test_a_redraw_moves_the_case_with_its_grid_only_while_the_rule_holds_it(rules):
    at_grid = case(CaseStatus.ACCEPTED, grid_version=1)
    at_its_grid = redraw(at_grid, assignment_to(OTHER_GRID), actor="p", plan_id=4)
    assert at_its_grid.holder == Holder(Tier.GRID, OTHER_GRID, None)
    assert at_its_grid.entry.note == f"plan 4 redrew the grids: {GRID} v1 → {OTHER_GRID} v3 (inside)"
    escalated = case(CaseStatus.DISPATCHED, Tier.COMMUNITY, COMMUNITY)
    assert redraw(escalated, assignment_to(OTHER_GRID), actor="p", plan_id=4).holder == escalated.holder
    # Outside every grid, the case waited at the lowest unit containing it: the new grid takes it.
    unassigned = case(CaseStatus.REPORTED, Tier.COMMUNITY, COMMUNITY, grid_code=None,
                      lowest_unit=("community", COMMUNITY))  # fmt: skip
    assert redraw(unassigned, assignment_to(OTHER_GRID), actor="p", plan_id=4).holder.unit == OTHER_GRID
