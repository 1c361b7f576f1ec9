"""Coverage reports in chains: a report refreshed after a publish no longer copies what it keeps.

A full run starts a chain (`coverage_reports.base_report_id` = its own id); a refresh after a
publish (services/coverage_refresh.py) adds a report to the chain of the report it grew from
(`grew_from`, unique: a report is refreshed once, so a chain never branches), stores only its
fresh findings and marks the findings it replaces with `coverage_findings.retired_in` = its id.
The findings of report R are then those of R's chain with `report_id <= R` and `retired_in` NULL
or later than R (store/coverage_chain.py says so once, for every reader): a refresh writes a few
rows, and an older report of the chain still reads as it was saved.

Every existing report is its own chain's root (even one refreshed by a copy before: it holds all
its findings). Downgrade copies each refreshed report's kept findings into it again.

Revision ID: 0023_coverage_chain
Revises: 0022_case_rollup_keys
Create Date: 2026-12-05
"""

from alembic import op

revision = "0023_coverage_chain"
down_revision = "0022_case_rollup_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the chain columns (existing reports are roots) and their indexes."""
    op.execute(
        """
        ALTER TABLE coverage_reports
            ADD COLUMN base_report_id bigint REFERENCES coverage_reports (id) ON DELETE CASCADE,
            ADD COLUMN grew_from bigint UNIQUE REFERENCES coverage_reports (id) ON DELETE CASCADE;
        UPDATE coverage_reports SET base_report_id = id;
        ALTER TABLE coverage_reports ALTER COLUMN base_report_id SET NOT NULL;
        CREATE INDEX coverage_reports_chain_idx ON coverage_reports (base_report_id, id);

        -- NULL: still a finding of every later report of its chain. No rewrite: a nullable column.
        ALTER TABLE coverage_findings
            ADD COLUMN retired_in bigint REFERENCES coverage_reports (id) ON DELETE SET NULL;
        -- A report's findings, and those under a few groups (store/coverage_groups.group_findings:
        -- a range of first units) without reading the rest; it serves report_id alone as well.
        CREATE INDEX coverage_findings_unit_idx
            ON coverage_findings (report_id, (CAST(units[1] AS text) COLLATE "C"));
        DROP INDEX coverage_findings_report_idx;
        -- For the foreign key when a report is deleted; few rows are ever retired.
        CREATE INDEX coverage_findings_retired_idx ON coverage_findings (retired_in)
            WHERE retired_in IS NOT NULL;
        """
    )


def downgrade() -> None:
    """Copy each refreshed report's kept findings into it (not new), then drop the chain columns."""
    op.execute(
        """
        INSERT INTO coverage_findings (report_id, kind, units, area_m2, new, detail, geom)
        SELECT r.id, f.kind, f.units, f.area_m2, false, f.detail, f.geom
        FROM coverage_reports r
        JOIN coverage_reports c ON c.base_report_id = r.base_report_id AND c.id < r.id
        JOIN coverage_findings f ON f.report_id = c.id
        WHERE r.base_report_id <> r.id AND (f.retired_in IS NULL OR f.retired_in > r.id)
        ORDER BY r.id, f.id;
        DROP INDEX coverage_findings_retired_idx;
        CREATE INDEX coverage_findings_report_idx ON coverage_findings (report_id);
        DROP INDEX coverage_findings_unit_idx;
        ALTER TABLE coverage_findings DROP COLUMN retired_in;
        ALTER TABLE coverage_reports DROP COLUMN grew_from, DROP COLUMN base_report_id;
        """
    )
