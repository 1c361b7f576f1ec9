"""Coverage reports: dated runs of the coverage analysis of a unit, and their findings.

Revision ID: 0004_coverage_reports
Revises: 0003_unit_changes
Create Date: 2026-11-22
"""

from alembic import op

revision = "0004_coverage_reports"
down_revision = "0003_unit_changes"
branch_labels = None
depends_on = None

KINDS = (
    "gap",
    "overlap",
    "sliver",
    "outside_parent",
    "special_outside_community",
    "no_staff",
    "no_party_cell",
    "size_norm",
    "case_in_gap",
)


def upgrade() -> None:
    kinds = ", ".join(f"'{k}'" for k in KINDS)
    op.execute(
        f"""
        -- One run of the analysis of a unit's subtree: when, as of which date, with which tolerances.
        CREATE TABLE coverage_reports (
            id          bigserial PRIMARY KEY,
            unit_code   varchar(18) NOT NULL REFERENCES units (code),
            created_at  timestamptz NOT NULL DEFAULT now(),
            as_of       timestamptz,            -- NULL: the current versions
            tolerances  jsonb NOT NULL DEFAULT '{{}}',
            summary     jsonb NOT NULL DEFAULT '{{}}'
        );
        CREATE INDEX coverage_reports_unit_idx ON coverage_reports (unit_code, created_at DESC, id DESC);

        -- Polygons for areas, a point for a case in a gap, NULL for staff/party/size findings.
        CREATE TABLE coverage_findings (
            id          bigserial PRIMARY KEY,
            report_id   bigint NOT NULL REFERENCES coverage_reports (id) ON DELETE CASCADE,
            kind        text NOT NULL CHECK (kind IN ({kinds})),
            units       varchar(18)[] NOT NULL,
            area_m2     float8 CHECK (area_m2 >= 0),
            new         boolean NOT NULL,
            detail      jsonb NOT NULL DEFAULT '{{}}',
            geom        geometry(Geometry, 4490)
        );
        CREATE INDEX coverage_findings_report_idx ON coverage_findings (report_id);
        CREATE INDEX coverage_findings_geom_idx ON coverage_findings USING gist (geom);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE coverage_findings; DROP TABLE coverage_reports;")
