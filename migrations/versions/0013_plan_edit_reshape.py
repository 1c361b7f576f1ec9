"""Plan edits may reshape the boundary two neighbouring units share (geo.reshape).

Revision ID: 0013_plan_edit_reshape
Revises: 0012_field_work
Create Date: 2026-12-05
"""

from alembic import op

revision = "0013_plan_edit_reshape"
down_revision = "0012_field_work"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE plan_edits DROP CONSTRAINT plan_edits_operation_check;
        ALTER TABLE plan_edits ADD CONSTRAINT plan_edits_operation_check
            CHECK (operation IN ('replace', 'split', 'merge', 'move', 'create', 'retire', 'reshape'));
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DELETE FROM plan_edits WHERE operation = 'reshape';
        ALTER TABLE plan_edits DROP CONSTRAINT plan_edits_operation_check;
        ALTER TABLE plan_edits ADD CONSTRAINT plan_edits_operation_check
            CHECK (operation IN ('replace', 'split', 'merge', 'move', 'create', 'retire'));
        """
    )
