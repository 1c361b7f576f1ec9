"""What a move, an escalation or a redraw changes in a case: pure decisions, no database.

The store loads a case (`CaseState`) and what a move names (`Found`); these functions decide the
`Change` (the case's new status, clock, holder and other fields, and the history entry saying
so); the store writes it. The lifecycle's table itself (which moves are allowed, what each needs)
is cases.lifecycle.

>>> from datetime import datetime, timezone
>>> case = CaseState(1, CaseStatus.IN_PROGRESS, "0101", False, Tier.COMMUNITY, "411681001002", None)
>>> escalation_holder(case)
Holder(tier=<Tier.STREET: 'street'>, unit='411681001', department=None)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cases.intake_checks import responsibility, responsible
from cases.lifecycle import NEXT_TIER, TIER_OF_LEVEL, CaseStatus, Move, Rating, Tier, check_move
from cases.model import StageClock, extended_clock, stage_clock
from cases.rules import Rules
from cases.worktime import TimeLimit
from errors import Invalid
from geo.assignment import Assignment
from geo.codes import county_of, unit_above

SYSTEM = "system"  # the actor of what the service does by itself (escalation, reopening)


class InvalidTarget(Invalid):
    """A move names a unit, department or case that cannot take it."""


@dataclass(frozen=True)
class Holder:
    """Who is responsible for a case: the tier, the unit (or grid) and a summoned department."""

    tier: Tier
    unit: str | None
    department: str | None = None


@dataclass(frozen=True)
class CaseState:
    """What the workflow's decisions read of a stored case."""

    id: int
    status: CaseStatus
    category: str
    urgent: bool
    tier: Tier
    unit_code: str | None
    grid_code: str | None
    department: str | None = None
    clock: StageClock = field(default_factory=lambda: StageClock(None))
    escalations: int = 0
    lowest_unit: tuple[str, str] | None = None  # (level, code) of the lowest unit the rule found
    number: str = ""
    grid_version: int | None = None

    @property
    def holder(self) -> Holder:
        """Who holds the case now."""
        return Holder(self.tier, self.unit_code, self.department)


@dataclass(frozen=True)
class Found:
    """What the store knows of what a move names, looked up before deciding."""

    unit_level: str | None = None  # the level of the move's unit when it is a current unit
    merge_status: CaseStatus | None = None  # the status of the case merged into


@dataclass(frozen=True)
class Entry:
    """The history entry a change appends: who, what, why, and the clock of the stage left."""

    actor: str
    action: str
    from_status: CaseStatus | None
    note: str | None
    details: dict[str, Any]
    left: StageClock | None = None

    def on_time(self, at: datetime) -> bool | None:
        """Whether the stage left at `at` was left in time (None: no clock ran)."""
        if self.left is None or self.left.due_at is None:
            return None
        return at <= self.left.due_at


@dataclass(frozen=True)
class Change:
    """What to write: the case's status, clock and holder, its other changed fields, the history
    entry; `assignment` when the rule's answer changed (a redraw); `then` a change that follows."""

    status: CaseStatus
    clock: StageClock
    holder: Holder
    entry: Entry
    fields: dict[str, Any] = field(default_factory=dict)  # merged_into, rating, closed_at, escalations
    assignment: Assignment | None = None
    then: Change | None = None


def target_of(move: Move) -> str | None:
    """The unit or department a move hands the case to (None: it hands it to none)."""
    return move.unit if move.unit and move.to in (CaseStatus.DISPATCHED, CaseStatus.REASSIGNED) else None


def apply_move(
    case: CaseState,
    move: Move,
    rules: Rules,
    now: datetime,
    *,
    actor: str,
    note: str | None = None,
    found: Found | None = None,
) -> Change:
    """What one lifecycle move changes (raising IllegalMove, MissingNeeds or InvalidTarget when
    it cannot be made); an unsatisfied revisit is followed by the case's reopening."""
    check_move(case.status, move)
    found = found or Found()
    holder, fields, details = _new_holder(case, move, rules, found), {}, {}
    if target_of(move):
        details["target"] = move.unit
    if move.to == CaseStatus.MERGED:
        _check_merge_target(case, move.into, found.merge_status)
        fields["merged_into"] = details["into"] = move.into
    if move.to == CaseStatus.REVISITED:
        fields["rating"] = details["rating"] = Rating(move.rating).value
    if move.to == CaseStatus.CLOSED:
        fields["closed_at"] = now
    if move.reason:
        details["reason"] = move.reason
    if move.to == CaseStatus.EXTENDED:
        try:
            limit = TimeLimit.parse(move.extend_by)
        except ValueError as e:
            raise InvalidTarget(str(e)) from None
        clock = extended_clock(case.clock, limit, urgent=case.urgent, calendar=rules.calendar)
        details["extend_by"] = str(limit)
    else:
        clock = _clock(move.to, case, rules, now)
    entry = Entry(actor, move.to.value, case.status, note or move.reason, details, case.clock)
    then = None
    if move.to == CaseStatus.REVISITED and move.rating == Rating.UNSATISFIED:
        then = _reopening(case, holder, rules, now)
    return Change(move.to, clock, holder, entry, fields, then=then)


def _new_holder(case: CaseState, move: Move, rules: Rules, found: Found) -> Holder:
    """Who holds the case after the move: a named target, its grid when dispatched, else as now."""
    target = target_of(move)
    if target:
        return target_holder(case, target, rules, found.unit_level)
    if move.to == CaseStatus.DISPATCHED and case.grid_code and case.tier == Tier.GRID:
        return Holder(case.tier, case.grid_code, case.department)
    return case.holder


def target_holder(case: CaseState, target: str, rules: Rules, unit_level: str | None) -> Holder:
    """The holder of a case handed to `target`: a department's code, or a unit code of `unit_level`
    (None: no current unit has that code)."""
    if target in rules.departments:
        if case.tier not in (Tier.STREET, Tier.COUNTY, Tier.DEPARTMENT):
            raise InvalidTarget(
                "only a street/town or the county may summon a department "
                f"(the case is at the {case.tier} tier); escalate it first"
            )
        return Holder(Tier.DEPARTMENT, case.unit_code, target)
    if unit_level is None:
        raise InvalidTarget(
            f"{target!r} is neither a current unit code nor a department "
            f"({', '.join(sorted(rules.departments))}; see GET /departments)"
        )
    return Holder(TIER_OF_LEVEL[unit_level], target, None)


def _check_merge_target(case: CaseState, into: int | None, status: CaseStatus | None) -> None:
    if into == case.id:
        raise InvalidTarget("a case cannot be merged into itself")
    if status in (CaseStatus.MERGED, CaseStatus.VOIDED):
        raise InvalidTarget(f"case {into} is {status}; merge into the case it became")


def _clock(status: CaseStatus, case: CaseState, rules: Rules, now: datetime) -> StageClock:
    category = rules.categories.get(case.category)
    return stage_clock(status, category, urgent=case.urgent, start=now, calendar=rules.calendar)


def _reopening(case: CaseState, holder: Holder, rules: Rules, now: datetime) -> Change:
    """An unsatisfied revisit sends the case back to work (rework), with a new handling clock."""
    entry = Entry(
        SYSTEM, "reopen", CaseStatus.REVISITED, "the reporter was unsatisfied: back to work", {}, None
    )
    clock = _clock(CaseStatus.IN_PROGRESS, case, rules, now)
    return Change(CaseStatus.IN_PROGRESS, clock, holder, entry, {"closed_at": None})


def escalation_holder(case: CaseState) -> Holder:
    """The holder one tier up: the unit above (codes nest), the county for a department's case."""
    tier = NEXT_TIER[case.tier]
    if tier is None:
        raise ValueError(f"a case at the {case.tier} tier has no tier above it")
    code = case.unit_code or case.grid_code
    if code is None:
        return Holder(tier, None)
    return Holder(tier, county_of(code) if tier == Tier.COUNTY else unit_above(code))


def escalate(case: CaseState, rules: Rules, now: datetime) -> Change:
    """What escalating an overdue case changes: dispatched one tier up, with a new clock."""
    holder = escalation_holder(case)
    entry = Entry(
        SYSTEM,
        "escalate",
        case.status,
        f"overdue at the {case.clock.stage} stage: escalated to the {holder.tier} tier",
        {"from_tier": case.tier.value, "from_unit": case.unit_code, "from_department": case.department},
        case.clock,
    )
    clock = _clock(CaseStatus.DISPATCHED, case, rules, now)
    return Change(CaseStatus.DISPATCHED, clock, holder, entry, {"escalations": case.escalations + 1})


def redraw(case: CaseState, assignment: Assignment, *, actor: str, plan_id: int) -> Change:
    """A published plan changed the case's grid: the new assignment, and the holder with it while
    the case is where the rule put it (a case escalated or dispatched elsewhere stays there)."""
    holder = case.holder
    if (case.tier, case.unit_code) == responsible(case.grid_code, case.lowest_unit):
        tier, unit = responsibility(assignment)
        holder = Holder(tier, unit, case.department)
    grid = assignment.grid
    details = {
        "plan_id": plan_id,
        "from": {
            "grid": case.grid_code,
            "version": case.grid_version,
            "tier": case.tier.value,
            "unit": case.unit_code,
        },
        "to": {
            "grid": grid.code if grid else None,
            "version": grid.version if grid else None,
            "tier": holder.tier.value,
            "unit": holder.unit,
        },
    }
    old = f"{case.grid_code} v{case.grid_version}" if case.grid_code else "no grid"
    new = f"{grid.code} v{grid.version}" if grid else "no grid"
    note = f"plan {plan_id} redrew the grids: {old} → {new} ({assignment.explanation})"
    entry = Entry(actor, "redraw", case.status, note, details, None)
    return Change(case.status, case.clock, holder, entry, assignment=assignment)
