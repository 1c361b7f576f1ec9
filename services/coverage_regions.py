"""A coverage run over many counties: `gridmap coverage` without a unit (which counties there are, and
the findings no single county's analysis sees: between the counties of a city or the cities of a
province, and overlaps between top-level units), and the run of a province or a city, one county
at a time."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime

import numpy as np
import shapely
from sqlalchemy.orm import Session

from geo.coverage import CasePoint, Finding, Tolerances, Unit, analyse_groups, analyse_tree
from geo.coverage_totals import analyse_roots
from store import coverage as store
from store.coverage import CoverageRun


def county_codes(session: Session) -> list[str]:
    """The codes of the stored counties, in order."""
    return store.county_codes(session)


def between_regions(
    session: Session, tolerances: Tolerances, at: datetime | None = None, *, under: str = ""
) -> list[Finding]:
    """Findings between the counties of a city or the cities of a province (those under `under`)."""
    groups = [g for g in store.region_groups(session, at) if g[0].code.startswith(under)]
    cases = store.unheld_cases(session, under, at) if under else []
    return analyse_groups(groups, tolerances, cases=cases)


def between_roots(session: Session, tolerances: Tolerances, at: datetime | None = None) -> list[Finding]:
    """Overlaps between top-level units (no parent compares them)."""
    return analyse_roots(store.root_units(session, at), tolerances)


def region_run(
    session: Session,
    code: str,
    tolerances: Tolerances,
    *,
    at: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CoverageRun:
    """The coverage of a province or a city: its regions against their children, then each county
    below it with its subtree, one county at a time (so that one county's geometries are in memory,
    not the province's), compared with the unit's last report.

    The findings are those of the whole subtree analysed at once (geo.coverage.analyse_tree), each
    county's in its own Gauss-Krüger zone, as `--unit COUNTY` finds them.
    """
    t0 = time.perf_counter()
    cases = store.unheld_cases(session, code, at)
    findings = between_regions(session, tolerances, at, under=code)
    load = 0.0
    counties = store.county_codes_under(session, code, at)
    for number, county in enumerate(counties, 1):
        t1 = time.perf_counter()
        units = store.load_subtree(session, county, at)
        load += time.perf_counter() - t1
        findings += analyse_tree(units, tolerances, cases=cases_near(cases, units))
        if progress is not None:
            progress(number, len(counties))
    timings = {"load_s": load, "analyse_s": -load}  # compared_run adds the time since t0
    return store.compared_run(session, code, tolerances, at, findings, timings, t0)


def cases_near(cases: Sequence[CasePoint], units: Sequence[Unit]) -> list[CasePoint]:
    """The cases inside the box of `units` (a county's subtree): only those can lie in its gaps."""
    if not cases or not units:
        return []
    minx, miny, maxx, maxy = shapely.total_bounds(np.array([u.geometry for u in units], dtype=object))
    lon, lat = np.array([c.lon for c in cases]), np.array([c.lat for c in cases])
    inside = (lon >= minx) & (lon <= maxx) & (lat >= miny) & (lat <= maxy)
    return [c for c, keep in zip(cases, inside, strict=True) if keep]
