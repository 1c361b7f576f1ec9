"""The case lifecycle (domain.md §4): statuses, the one table of allowed moves, tiers and clocks.

Main path (digital city management and 12345 practice):

    reported → verified → filed → dispatched → accepted → in_progress → handled → checked
             → closed → revisited

Side paths, each with a reason: returned (回退), reassigned (改派), extended (延期), suspended
(缓办), voided (作废), merged (as a duplicate). An unsatisfied revisit reopens the case.
Everything that decides whether a move is legal, and what it must carry, lives here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from errors import Conflict, Invalid


class CaseStatus(StrEnum):
    """Where a case stands."""

    REPORTED = "reported"
    VERIFIED = "verified"
    FILED = "filed"
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    HANDLED = "handled"
    CHECKED = "checked"
    CLOSED = "closed"
    REVISITED = "revisited"
    RETURNED = "returned"
    REASSIGNED = "reassigned"
    EXTENDED = "extended"
    SUSPENDED = "suspended"
    VOIDED = "voided"
    MERGED = "merged"


class Source(StrEnum):
    """Who brought the case in."""

    PATROL = "patrol"
    CITIZEN = "citizen"
    HOTLINE = "hotline_12345"
    DEPARTMENT = "department"
    SENSOR = "sensor"


class Tier(StrEnum):
    """Who is handling the case, from the bottom up (三级联调, then the county)."""

    GRID = "grid"
    COMMUNITY = "community"
    STREET = "street"
    COUNTY = "county"
    DEPARTMENT = "department"  # summoned by a street's whistle (街镇吹哨、部门报到)


class Rating(StrEnum):
    """The reporter's verdict at the revisit."""

    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    UNSATISFIED = "unsatisfied"


class Need(StrEnum):
    """What a move must carry besides its target status."""

    REASON = "reason"
    UNIT = "unit"  # a unit code or a department to take the case
    EXTEND_BY = "extend_by"  # a time limit text, e.g. "2d"
    INTO = "into"  # the case this one duplicates
    RATING = "rating"


S = CaseStatus
OPEN_HANDLING = (S.DISPATCHED, S.REASSIGNED, S.ACCEPTED, S.IN_PROGRESS, S.EXTENDED)

# The one table of allowed moves: from → {to: what the move needs}.
TRANSITIONS: dict[CaseStatus, dict[CaseStatus, frozenset[Need]]] = {
    S.REPORTED: {S.VERIFIED: frozenset(), S.VOIDED: {Need.REASON}, S.MERGED: {Need.INTO}},
    S.VERIFIED: {S.FILED: frozenset(), S.VOIDED: {Need.REASON}, S.MERGED: {Need.INTO}},
    S.FILED: {S.DISPATCHED: frozenset(), S.VOIDED: {Need.REASON}, S.MERGED: {Need.INTO}},
    S.DISPATCHED: {
        S.ACCEPTED: frozenset(),
        S.RETURNED: {Need.REASON},
        S.REASSIGNED: {Need.UNIT, Need.REASON},
    },
    S.REASSIGNED: {
        S.ACCEPTED: frozenset(),
        S.RETURNED: {Need.REASON},
        S.REASSIGNED: {Need.UNIT, Need.REASON},
    },
    S.ACCEPTED: {
        S.IN_PROGRESS: frozenset(),
        S.RETURNED: {Need.REASON},
        S.REASSIGNED: {Need.UNIT, Need.REASON},
        S.SUSPENDED: {Need.REASON},
    },
    S.IN_PROGRESS: {
        S.HANDLED: frozenset(),
        S.EXTENDED: {Need.EXTEND_BY, Need.REASON},
        S.SUSPENDED: {Need.REASON},
        S.RETURNED: {Need.REASON},
        S.REASSIGNED: {Need.UNIT, Need.REASON},
    },
    S.EXTENDED: {S.HANDLED: frozenset(), S.SUSPENDED: {Need.REASON}},
    S.SUSPENDED: {S.IN_PROGRESS: frozenset()},
    S.RETURNED: {S.DISPATCHED: frozenset(), S.REASSIGNED: {Need.UNIT, Need.REASON}, S.VOIDED: {Need.REASON}},
    S.HANDLED: {S.CHECKED: frozenset(), S.IN_PROGRESS: {Need.REASON}},  # failed check: rework
    S.CHECKED: {S.CLOSED: frozenset()},
    S.CLOSED: {S.REVISITED: {Need.RATING}},
    S.REVISITED: {},
    S.VOIDED: {},
    S.MERGED: {},
}
TRANSITIONS = {k: {to: frozenset(n) for to, n in v.items()} for k, v in TRANSITIONS.items()}

TERMINAL = frozenset(s for s, moves in TRANSITIONS.items() if not moves)
CLOSED_FOR_OPEN311 = TERMINAL | {S.CLOSED}  # "closed" to a citizen once the work is done

# Which clock (a stage of the category's time limits, cases.categories.STAGES) runs in each status.
# Suspended and finished cases run none.
STAGE_OF: dict[CaseStatus, str] = {
    S.REPORTED: "verify",
    S.VERIFIED: "file",
    S.FILED: "dispatch",
    S.RETURNED: "dispatch",
    S.DISPATCHED: "accept",
    S.REASSIGNED: "accept",
    S.ACCEPTED: "handle",
    S.IN_PROGRESS: "handle",
    S.EXTENDED: "handle",
    S.HANDLED: "check",
    S.CHECKED: "close",
    S.CLOSED: "revisit",
}


class IllegalMove(Conflict):
    """A move the table does not allow from the current status; lists the allowed ones."""

    def __init__(self, current: CaseStatus, to: str) -> None:
        self.current = current
        self.allowed = sorted(TRANSITIONS[current])
        allowed = ", ".join(self.allowed) or "none (the case is finished)"
        super().__init__(f"cannot move a case from {current} to {to}; allowed: {allowed}")


class MissingNeeds(Invalid):
    """A legal move without what it must carry."""


@dataclass(frozen=True)
class Move:
    """One requested transition and what it carries."""

    to: CaseStatus
    reason: str | None = None
    unit: str | None = None
    extend_by: str | None = None
    into: int | None = None
    rating: Rating | None = None


def check_move(current: CaseStatus, move: Move) -> None:
    """Raise IllegalMove or MissingNeeds unless `move` may be made from `current`."""
    allowed = TRANSITIONS[current]
    if move.to not in allowed:
        raise IllegalMove(current, move.to)
    missing = sorted(need for need in allowed[move.to] if not getattr(move, need.value))
    if missing:
        raise MissingNeeds(f"moving to {move.to} needs: {', '.join(missing)}")


def allowed_moves(current: CaseStatus) -> dict[str, list[str]]:
    """The moves open from `current`, each with what it needs (for clients and error messages)."""
    return {to.value: sorted(n.value for n in needs) for to, needs in TRANSITIONS[current].items()}


def is_open(status: CaseStatus) -> bool:
    """Whether the case still waits for someone (not finished, not closed)."""
    return status not in CLOSED_FOR_OPEN311


# The statuses as stored, for SQL: ANY(:open) / ALL(:finished).
OPEN_STATUSES = [s.value for s in CaseStatus if is_open(s)]
FINISHED_STATUSES = [s.value for s in CaseStatus if not is_open(s)]


# Escalation goes one tier up; a department's case goes back to the county command centre.
NEXT_TIER: dict[Tier, Tier | None] = {
    Tier.GRID: Tier.COMMUNITY,
    Tier.COMMUNITY: Tier.STREET,
    Tier.STREET: Tier.COUNTY,
    Tier.DEPARTMENT: Tier.COUNTY,
    Tier.COUNTY: None,
}

TIER_OF_LEVEL = {
    "grid": Tier.GRID,
    "micro_grid": Tier.GRID,
    "community": Tier.COMMUNITY,
    "street": Tier.STREET,
    "county": Tier.COUNTY,
}
