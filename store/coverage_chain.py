"""The findings of a stored coverage report, said once for every reader (issue 19 §2).

A full run stores all its findings and starts a chain (`coverage_reports.base_report_id` = its id).
A refresh after a publish adds a report to the chain (`grew_from` = the report it was made from),
stores only its fresh findings and sets `retired_in` on the findings it replaces; what it keeps
stays where it is (migration 0022_coverage_chain). So the findings of report R are those of R's
chain with `report_id <= R` (ids grow along a chain, which never branches) and `retired_in` NULL
or after R; a kept finding is not new in R (it was there before), a fresh one as stored.
"""

from __future__ import annotations


def findings_of(report: str = ":report") -> str:
    """SQL subquery (alias it) of the findings of the report whose id is `report` (a bind or an
    expression): id, report_id, kind, units, area_m2, detail, geom and `new` as that report says."""
    return f"""(SELECT f.id, f.report_id, f.kind, f.units, f.area_m2, f.detail, f.geom,
                       f.new AND f.report_id = {report} AS new
                FROM coverage_findings f
                WHERE f.report_id IN (
                        SELECT c.id FROM coverage_reports r
                        JOIN coverage_reports c ON c.base_report_id = r.base_report_id AND c.id <= r.id
                        WHERE r.id = {report})
                  AND (f.retired_in IS NULL OR f.retired_in > {report}))"""


# A new report that starts a chain of its own: its id chosen first, so that it can be its own root.
NEW_ROOT_ID = "SELECT nextval(pg_get_serial_sequence('coverage_reports', 'id')) AS id"
