"""Notify listeners when units change (in-memory lookups of /locate rebuild on it).

Revision ID: 0003_unit_changes
Revises: 0002_cases
Create Date: 2026-11-22
"""

from alembic import op

revision = "0003_unit_changes"
down_revision = "0002_cases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One notification per statement (and PostgreSQL folds repeats within a transaction); it is
    # delivered at commit, so a listener never rebuilds from data it cannot see yet.
    op.execute(
        """
        CREATE FUNCTION unit_versions_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('unit_changes', '');
            RETURN NULL;
        END $$;
        CREATE TRIGGER unit_versions_notify AFTER INSERT OR UPDATE ON unit_versions
            FOR EACH STATEMENT EXECUTE FUNCTION unit_versions_notify();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER unit_versions_notify ON unit_versions;
        DROP FUNCTION unit_versions_notify();
        """
    )
