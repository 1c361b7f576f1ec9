"""Coverage reports as use cases: run a unit's analysis (geo.coverage through store.coverage), save
it as a dated report with its audit entry, compare a saved report with the one before it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from errors import NotFound
from geo.codes import CODE_LENGTH, Level
from geo.coverage import Tolerances
from services import coverage_regions
from store import coverage as store
from store import users
from store.coverage import CoverageRun

REPORT_AUDIT = "coverage_report"  # the audit log's action for a saved report


class ReportNotFound(NotFound):
    """No stored coverage report with that id."""


def coverage_of(
    session: Session,
    unit: str,
    tolerances: Tolerances,
    *,
    at: datetime | None = None,
    save: bool = False,
    actor: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CoverageRun:
    """A unit's coverage findings (as of `at`); with `save`, stored as a dated report and audited."""
    if len(unit) < CODE_LENGTH[Level.COUNTY]:  # a province or a city: one county at a time
        run = coverage_regions.region_run(session, unit, tolerances, at=at, progress=progress)
    else:
        run = store.run_coverage(session, unit, tolerances, at=at, progress=progress)
    if save:
        report_id = store.save_report(session, run)
        users.audit(session, actor or "system", REPORT_AUDIT, unit, {"report_id": report_id})
    return run


def reports_of(session: Session, unit: str) -> list[dict[str, Any]]:
    """The stored reports of a unit, newest first, with their summaries."""
    return store.list_reports(session, unit)


def report_unit(session: Session, report_id: int) -> str:
    """The unit a stored report is about; ReportNotFound if there is none."""
    unit = store.report_unit(session, report_id)
    if unit is None:
        raise ReportNotFound(f"no coverage report {report_id}")
    return unit


def compare_report(session: Session, report_id: int) -> dict[str, Any]:
    """A stored report against its unit's previous one: new, resolved and unchanged findings."""
    return store.compare_report(session, report_id, report_unit(session, report_id))
