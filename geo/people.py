"""Who works in a unit: staff roles and party-cell kinds."""

from __future__ import annotations

from enum import StrEnum


class StaffRole(StrEnum):
    """Roles of grid staff (网格长, 专职/兼职网格员, 志愿者, 楼栋长)."""

    GRID_CHIEF = "grid_chief"
    FULL_TIME = "full_time"
    PART_TIME = "part_time"
    VOLUNTEER = "volunteer"
    BUILDING_HEAD = "building_head"


class PartyCellKind(StrEnum):
    """Party cells (网格党支部, 党小组, 党员中心户, 党建指导员); a central household is a point."""

    BRANCH = "branch"
    GROUP = "group"
    CENTRAL_HOUSEHOLD = "central_household"
    INSTRUCTOR = "instructor"


# Organisation coverage: a grid counts as covered when it has one of these.
ORGANISING_CELLS = (PartyCellKind.BRANCH, PartyCellKind.GROUP)
