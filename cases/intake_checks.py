"""Where a new report lands: who takes it, and what about its place is flagged or refused.

A report is accepted wherever it comes from, and flagged when its place deserves a second look:
a field worker's report outside their own unit, or a point outside every unit of the deployment
(a phone's stale fix, a test, someone far away: e.g. Beijing in a Henan county's queue). A
deployment that wants no such reports refuses them (GRIDMAP_REFUSE_OUTSIDE_UNITS).
"""

from __future__ import annotations

from access.roles import Role, User
from cases.categories import Category, CategoryTable
from cases.lifecycle import TIER_OF_LEVEL, Tier
from errors import Invalid
from geo.assignment import Assignment


class OutsideUnits(Invalid):
    """A report outside every unit, refused because the deployment says so; the message says why."""


class InvalidReport(Invalid):
    """A report that cannot become a case; the message says what to send instead."""


def responsible(grid_code: str | None, lowest_unit: tuple[str, str] | None) -> tuple[Tier, str | None]:
    """THE rule of who takes a case where the assignment rule put it: its grid, else the lowest
    unit containing it, given as (level, code) (the unassigned queue), else the county."""
    if grid_code is not None:
        return Tier.GRID, grid_code
    if lowest_unit is not None:
        level, code = lowest_unit
        return TIER_OF_LEVEL[level], code
    return Tier.COUNTY, None


def responsibility(assignment: Assignment) -> tuple[Tier, str | None]:
    """Who takes a new case: `responsible` for the rule's answer at its point."""
    lowest = assignment.units[-1] if assignment.units else None
    return responsible(
        assignment.grid.code if assignment.grid is not None else None,
        (lowest.level, lowest.code) if lowest is not None else None,
    )


def assignable(categories: CategoryTable, code: str) -> Category:
    """The intake's category; a top class is refused with its subclasses named (InvalidReport)."""
    category = categories.get(code)
    if not categories.is_assignable(category.code):
        children = ", ".join(c.code for c in categories.children(category.code)[:8])
        raise InvalidReport(
            f"category {category.code} {category.name} is a top class; use a subclass ({children}, …)"
        )
    return category


def outside_every_unit(assignment: Assignment) -> bool:
    """Whether no unit contains the point and no grid took it (not even by snapping)."""
    return assignment.grid is None and not assignment.units


def _where(assignment: Assignment) -> str:
    near = assignment.nearest
    if near is None:
        return "no grid exists"
    return f"the nearest grid, {near.code}, is {near.distance_m / 1000:,.1f} km away"


def outside_flags(user: User | None, assignment: Assignment) -> list[str]:
    """The flags a report's place earns: outside every unit (anyone), outside a field worker's unit."""
    flags = []
    if outside_every_unit(assignment):
        flags.append(f"reported outside every unit of this deployment: {_where(assignment)}")
    if user is not None and user.role == Role.FIELD_WORKER:
        _, unit = responsibility(assignment)
        if not user.covers(unit):  # a field worker may report anywhere, flagged outside their grids
            flags.append(f"reported by {user.username} outside their unit {user.unit_code}")
    return flags


def refuse_outside_units(assignment: Assignment) -> None:
    """OutsideUnits for a point outside every unit (called when the deployment refuses them)."""
    if outside_every_unit(assignment):
        raise OutsideUnits(
            f"the point lies outside every unit this service covers ({_where(assignment)}); "
            "check the coordinates and their crs (wgs84, gcj02, bd09, cgcs2000)"
        )
