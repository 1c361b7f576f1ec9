"""Who may do what, where: roles, the one table of their permissions, and jurisdiction.

Every user belongs to one unit and acts only inside it and its descendants (unit codes nest by
prefix, geo.codes); a department handler acts on the cases summoned to their department. The web
layer applies these rules through one dependency (api/access.py); nothing else decides.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

from cases.lifecycle import CaseStatus, allowed_moves
from errors import Denied
from geo.codes import CODE_LENGTH, Level


class Role(StrEnum):
    """What a user is for."""

    ADMIN = "admin"
    PLANNER = "planner"
    DISPATCHER = "dispatcher"
    FIELD_WORKER = "field_worker"
    DEPARTMENT = "department"
    VIEWER = "viewer"


# What the workbench pages (/desk, its case pages, /desk/keys) are called for each role: Chinese, English.
DESK_NAMES: dict[Role, tuple[str, str]] = {
    Role.ADMIN: ("管理工作台", "Administrator's workbench"),
    Role.PLANNER: ("规划工作台", "Planner's workbench"),
    Role.DISPATCHER: ("调度台", "Dispatcher workbench"),
    Role.FIELD_WORKER: ("网格员工作台", "Field worker's workbench"),
    Role.DEPARTMENT: ("部门工作台", "Department workbench"),
    Role.VIEWER: ("查看台", "Viewer's workbench"),
}


class Permission(StrEnum):
    """Things a route may require."""

    READ_UNITS = "read_units"  # boundaries, coverage, the map (no personal data)
    READ_CASES = "read_cases"  # cases in the user's jurisdiction
    MOVE_CASES = "move_cases"  # every lifecycle move (dispatchers)
    HANDLE_CASES = "handle_cases"  # the handling moves only (field workers, departments)
    READ_PERSONAL = "read_personal"  # reporters' names and phones (unless confidential)
    READ_STATS = "read_stats"
    PLAN = "plan"  # draft and publish boundary plans
    READ_AUDIT = "read_audit"
    READ_PARTY_POINTS = "read_party_points"  # party-member households where they are (else ~100 m)
    MANAGE_USERS = "manage_users"
    PATROL = "patrol"  # record one's own patrols and read them (field workers); supervisors read others'


P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.PLANNER: frozenset({P.READ_UNITS, P.READ_CASES, P.READ_STATS, P.PLAN}),
    Role.DISPATCHER: frozenset(
        {P.READ_UNITS, P.READ_CASES, P.MOVE_CASES, P.READ_PERSONAL, P.READ_STATS, P.PATROL}
    ),
    Role.FIELD_WORKER: frozenset({P.READ_UNITS, P.READ_CASES, P.HANDLE_CASES, P.PATROL}),
    Role.DEPARTMENT: frozenset({P.READ_UNITS, P.READ_CASES, P.HANDLE_CASES}),
    Role.VIEWER: frozenset({P.READ_UNITS, P.READ_CASES, P.READ_STATS}),
}

# The moves a handler (not a dispatcher) may make on a case in their hands.
HANDLING_MOVES = frozenset(
    {CaseStatus.ACCEPTED, CaseStatus.IN_PROGRESS, CaseStatus.HANDLED, CaseStatus.RETURNED}
)

# A handled case waits for the check on site: sending it back to work (a failed check) is the
# checker's move, not the handler's own.
HANDLER_DONE = frozenset({CaseStatus.HANDLED})


@dataclass(frozen=True)
class User:
    """An authenticated user as the rules see them."""

    id: int
    username: str
    role: Role
    unit_code: str
    department: str | None = None

    def can(self, permission: Permission) -> bool:
        """Whether the user's role grants `permission`."""
        return permission in ROLE_PERMISSIONS[self.role]

    def covers(self, code: str | None) -> bool:
        """Whether a unit (by code) lies in the user's jurisdiction: their unit or below it."""
        return code is not None and code.startswith(self.unit_code)

    def may_see_case(self, unit_code: str | None, grid_code: str | None, department: str | None) -> bool:
        """A case is visible in the jurisdiction of its responsible unit or its grid, or to its department."""
        if self.role == Role.DEPARTMENT:
            return department is not None and department == self.department
        if self.covers(unit_code) or self.covers(grid_code):
            return True
        # A case in no unit's hands (outside every unit) is the county's: visible at county level
        # and above (a city or province user too).
        return unit_code is None and grid_code is None and len(self.unit_code) <= CODE_LENGTH[Level.COUNTY]

    def supervises_patrols(self) -> bool:
        """Whether the user reads the patrols of workers in their unit (dispatchers of a community,
        street or county, admins); everyone else sees only their own."""
        return self.role in (Role.DISPATCHER, Role.ADMIN)

    def may_see_patrol(self, worker: str, worker_unit: str) -> bool:
        """A patrol track (personal data) is visible to its worker and to supervisors covering the
        worker's unit."""
        return worker == self.username or (self.supervises_patrols() and self.covers(worker_unit))

    def may_move(self, to: CaseStatus, current: CaseStatus | None = None) -> bool:
        """Whether the role may make this lifecycle move, from `current` if known (jurisdiction apart)."""
        if self.can(Permission.MOVE_CASES):
            return True
        handling = self.can(Permission.HANDLE_CASES) and to in HANDLING_MOVES
        return handling and current not in HANDLER_DONE

    def may_hand_to(self, target: str, departments: Collection[str]) -> bool:
        """Whether a move may name `target`: a unit in the jurisdiction or up its chain (escalating),
        or a department, which a street/town or the county summons (街镇吹哨、部门报到)."""
        if target in departments:
            return self.role == Role.ADMIN or len(self.unit_code) <= CODE_LENGTH[Level.STREET]
        return self.covers(target) or self.unit_code.startswith(target)



class AccessDenied(Denied):
    """The user may not do this (here); the message says what is missing."""


def moves_for(user: User, current: CaseStatus) -> dict[str, list[str]]:
    """The moves open from `current` that the user's role may make, each with what it needs."""
    return {
        to: needs for to, needs in allowed_moves(current).items() if user.may_move(CaseStatus(to), current)
    }
