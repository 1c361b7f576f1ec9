"""A coverage run over every county (`gridmap coverage` without a unit): which counties there are,
and the findings no single county's analysis sees — between the counties of a city or the cities
of a province, and overlaps between top-level units."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from geo.coverage import Finding, Tolerances, analyse_groups
from geo.coverage_totals import analyse_roots
from store import coverage as store


def county_codes(session: Session) -> list[str]:
    """The codes of the stored counties, in order."""
    return store.county_codes(session)


def between_regions(session: Session, tolerances: Tolerances, at: datetime | None = None) -> list[Finding]:
    """Findings between the counties of a city or the cities of a province."""
    return analyse_groups(store.region_groups(session, at), tolerances)


def between_roots(session: Session, tolerances: Tolerances, at: datetime | None = None) -> list[Finding]:
    """Overlaps between top-level units (no parent compares them)."""
    return analyse_roots(store.root_units(session, at), tolerances)
