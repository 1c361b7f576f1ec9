"""Where a new report lands: who takes it, and what about its place is flagged or refused.

A report is accepted wherever it comes from, and flagged when its place deserves a second look:
a field worker's report outside their own unit, or a point outside every unit of the deployment
(a phone's stale fix, a test, someone far away: e.g. Beijing in a Henan county's queue). A
deployment that wants no such reports refuses them (GRIDMAP_REFUSE_OUTSIDE_UNITS).
"""

from __future__ import annotations

from access.roles import Role, User
from cases.lifecycle import TIER_OF_LEVEL, Tier
from errors import Invalid
from geo.assignment import Assignment


class OutsideUnits(Invalid):
    """A report outside every unit, refused because the deployment says so; the message says why."""


def responsibility(assignment: Assignment) -> tuple[Tier, str | None]:
    """Who takes a new case: its grid, else the lowest unit containing it (the unassigned queue)."""
    if assignment.grid is not None:
        return Tier.GRID, assignment.grid.code
    if assignment.units:
        lowest = assignment.units[-1]
        return TIER_OF_LEVEL[lowest.level], lowest.code
    return Tier.COUNTY, None


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
