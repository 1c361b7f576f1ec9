"""Coverage findings may be `not_patrolled` (a grid no patrol passed in N days, store.patrols).

Revision ID: 0014_coverage_not_patrolled
Revises: 0013_plan_edit_reshape
Create Date: 2026-12-05
"""

from alembic import op

revision = "0014_coverage_not_patrolled"
down_revision = "0013_plan_edit_reshape"
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


def _allow(kinds: tuple[str, ...]) -> None:
    listed = ", ".join(f"'{k}'" for k in kinds)
    op.execute("ALTER TABLE coverage_findings DROP CONSTRAINT coverage_findings_kind_check")
    op.execute(
        f"ALTER TABLE coverage_findings ADD CONSTRAINT coverage_findings_kind_check CHECK (kind IN ({listed}))"
    )


def upgrade() -> None:
    _allow((*KINDS, "not_patrolled"))


def downgrade() -> None:
    op.execute("DELETE FROM coverage_findings WHERE kind = 'not_patrolled'")
    _allow(KINDS)
