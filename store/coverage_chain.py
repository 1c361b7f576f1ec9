"""The findings of a stored coverage report, said once for every reader (issue 19 §2).

A full run stores all its findings and starts a chain (`coverage_reports.base_report_id` = its id).
A refresh after a publish adds a report to the chain (`grew_from` = the report it was made from),
stores only its fresh findings and sets `retired_in` on the findings it replaces; what it keeps
stays where it is (migration 0023_coverage_chain). So the findings of report R are those of R's
chain with `report_id <= R` (ids grow along a chain, which never branches) and `retired_in` NULL
or after R; a kept finding is not new in R (it was there before), a fresh one as stored.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session


def chain_of(session: Session, report_id: int) -> list[int]:
    """The ids of the reports whose rows make up report `report_id`: its chain up to it ([] if none)."""
    return list(
        session.execute(
            text(
                """SELECT c.id FROM coverage_reports r
                   JOIN coverage_reports c ON c.base_report_id = r.base_report_id AND c.id <= r.id
                   WHERE r.id = :id ORDER BY c.id"""
            ),
            {"id": report_id},
        ).scalars()
    )


def findings_of(report: str = ":report", chain: str = ":chain") -> str:
    """SQL subquery (alias it) of the findings of report `report` (a bind), whose chain_of is the bind
    `chain`: id, report_id, kind, units, area_m2, detail, geom and `new` as that report says."""
    # The chain as a constant array (not a join): the planner then estimates each report's rows
    # from the statistics, and reads a full report as it read `report_id = R` before 0023.
    return f"""(SELECT f.id, f.report_id, f.kind, f.units, f.area_m2, f.detail, f.geom,
                       f.new AND f.report_id = {report} AS new
                FROM coverage_findings f
                WHERE f.report_id = ANY(CAST({chain} AS bigint[]))
                  AND (f.retired_in IS NULL OR f.retired_in > {report}))"""


def params_of(
    session: Session, report_id: int, report: str = "report", chain: str = "chain"
) -> dict[str, Any]:
    """The binds findings_of(":report", ":chain") needs for report `report_id`."""
    return {report: report_id, chain: chain_of(session, report_id)}


# A new report that starts a chain of its own: its id chosen first, so that it can be its own root.
NEW_ROOT_ID = "SELECT nextval(pg_get_serial_sequence('coverage_reports', 'id')) AS id"
