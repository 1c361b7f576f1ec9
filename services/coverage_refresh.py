"""Coverage after a publish, for the changed units alone (issue 19 §2): the groups a plan's changes
can affect are analysed again (geo.coverage_groups) and merged into the latest stored report of
every unit above them, as a new report of that report's chain (store/coverage_chain.py): the
findings of the other groups are kept where they are (not copied), those of the affected groups
retired and replaced, each marked new or not against the findings it replaces, as a full run would
(tests/store/test_coverage_refresh.py compares the two).

Run by the service's background job shortly after a publish (api/app.py, `refresh_coverage_periodically`)
or on demand (`gridmap coverage --after-plan ID`). What a publish does not change is left as
it was: open cases that fell into an unchanged gap, staff appointed elsewhere and not_patrolled
findings are seen by the next full run.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from errors import Conflict, NotFound
from geo import coverage_compare, crs
from geo.codes import CODE_LENGTH, LEVEL_BY_LENGTH, Level
from geo.coverage import ALWAYS_ANALYSED, Finding, Tolerances, Unit, analyse_groups
from geo.coverage_groups import changed_groups, group_of, within
from store import coverage as store
from store import coverage_groups as groups_store
from store import coverage_refresh as pending_store
from store import users

REFRESH_AUDIT = "coverage_refresh"  # the audit log's action for a report refreshed after a publish
COUNTY_LENGTH = CODE_LENGTH[Level.COUNTY]


class PlanNotPublished(NotFound):
    """No published plan with that id changed a unit."""


class AlreadyRefreshed(Conflict):
    """The latest report of a unit was refreshed by another run meanwhile."""


@dataclass
class Refreshed:
    """A report refreshed after a publish: the unit, the new report and the one it was made from."""

    unit: str
    report_id: int
    previous_report: int
    groups: list[str]
    replaced: int
    findings: list[Finding]  # the fresh findings of the affected groups, `new` set
    resolved: list[Finding]
    timings: dict[str, float] = field(default_factory=dict)


def refresh_after_changes(
    session: Session, codes: Iterable[str], tolerances: Tolerances, *, actor: str = "system"
) -> list[Refreshed]:
    """New reports, for every unit with a current stored report above the changed `codes`, with the
    affected groups analysed again and the rest of the report kept."""
    t0 = time.perf_counter()
    groups = changed_groups(codes)
    above = {g[:n] for g in groups for n in CODE_LENGTH.values() if n <= len(g)}
    reports = groups_store.latest_reports(session, sorted(above))
    if not reports:
        return []
    loaded = groups_store.load_groups(session, sorted(groups))
    load_s = time.perf_counter() - t0
    out = []
    for unit, report_id in reports:
        t1 = time.perf_counter()
        mine = sorted(within(groups, unit))
        fresh = _analyse(session, unit, [loaded[g] for g in mine], tolerances)
        t2 = time.perf_counter()
        stored = groups_store.group_findings(session, report_id, mine)
        replaced = [(i, f) for i, f in stored if group_of(f) in set(mine)]
        compared = coverage_compare.compare(fresh, [f for _, f in replaced])
        summary = _merged_summary(session, report_id, [f for _, f in replaced], compared)
        t3 = time.perf_counter()
        new_id = groups_store.save_merged(
            session, unit, report_id, [i for i, _ in replaced], compared.findings, summary, tolerances
        )
        if new_id is None:  # another refresh grew from this report first: the chain never branches
            raise AlreadyRefreshed(f"coverage report {report_id} of {unit} was refreshed meanwhile")
        users.audit(session, actor, REFRESH_AUDIT, unit, {"report_id": new_id, "previous": report_id})
        # find_s: the stored findings of the groups; save_s: the new report (fresh rows, replaced retired).
        timings = {
            "load_s": load_s,
            "analyse_s": t2 - t1,
            "find_s": t3 - t2,
            "save_s": time.perf_counter() - t3,
        }
        out.append(
            Refreshed(
                unit, new_id, report_id, mine, len(replaced), compared.findings, compared.resolved, timings
            )
        )
    return out


def refresh_after_publish(session: Session, plan_id: int, tolerances: Tolerances) -> list[Refreshed]:
    """The refresh for the units a published plan created, changed or retired."""
    codes = pending_store.plan_codes(session, [plan_id])
    if not codes:
        raise PlanNotPublished(f"plan {plan_id} is not published, or changed no unit")
    return refresh_after_changes(session, codes, tolerances)


def refresh_pending(
    session: Session, tolerances: Tolerances, since: datetime
) -> tuple[list[Refreshed], datetime]:
    """The refresh for the plans published after `since`, and the new high-water mark (the
    background job's step; with nothing published it costs one query)."""
    plans = pending_store.plans_published_since(session, since)
    if not plans:
        return [], since
    if not pending_store.take_turn(session):  # another server refreshes these plans
        return [], plans[-1][1]
    codes = pending_store.plan_codes(session, [p for p, _ in plans])
    return refresh_after_changes(session, codes, tolerances), plans[-1][1]


def now(session: Session) -> datetime:
    """The database's clock: where a background job's high-water mark starts."""
    return pending_store.database_now(session)


def _analyse(
    session: Session, unit: str, groups: list[tuple[Unit | None, list[Unit]]], tolerances: Tolerances
) -> list[Finding]:
    """The findings of the groups as the full run of `unit` finds them: each in the zone that run
    uses (the unit's own for a county or below, else each county's, and the unit's for regions)."""
    by_zone: dict[str, list[tuple[Unit, list[Unit]]]] = {}
    for parent, kids in groups:
        if parent is None or not (kids or LEVEL_BY_LENGTH[len(parent.code)] in ALWAYS_ANALYSED):
            continue  # retired, or a grid left without micro-grids: no group any more
        zone_unit = (
            unit if len(unit) >= COUNTY_LENGTH or len(parent.code) < COUNTY_LENGTH else parent.code[:6]
        )
        by_zone.setdefault(zone_unit, []).append((parent, kids))
    found = []
    for zone_unit, members in by_zone.items():
        metric = crs.metric_crs_of(_outline(session, zone_unit))
        for parent, kids in members:
            cases = store.unheld_cases(session, parent.code)
            found += analyse_groups([(parent, kids)], tolerances, cases=cases, metric=metric)
    return found


def _outline(session: Session, code: str) -> Any:
    """A unit's current outline (storage lon/lat)."""
    [unit] = store.load_units(session, code, "v.code = :code", {"code": code})
    return unit.geometry


def _merged_summary(
    session: Session, previous: int, replaced: list[Finding], compared: coverage_compare.Comparison
) -> dict[str, dict[str, Any]]:
    """The new report's summary: the previous one's counts and areas less the replaced findings',
    plus the fresh ones'; new and resolved are those of the refresh (kept findings are not new)."""
    before = groups_store.report_summary(session, previous)
    gone = coverage_compare.summary_with_resolved(replaced)
    now = compared.summary()
    out = {}
    for kind, entry in now.items():
        was, less = before.get(kind, {}), gone[kind]
        merged = {**entry, "count": was.get("count", 0) - less["count"] + entry["count"]}
        if "area_m2" in entry:
            area = was.get("area_m2", 0.0) - less["area_m2"] + entry["area_m2"]
            merged["area_m2"] = round(max(area, 0.0), 2)
        out[kind] = merged
    return out
