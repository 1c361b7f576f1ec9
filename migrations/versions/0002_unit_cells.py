"""Notify listeners when units change (in-memory lookups of /locate rebuild on it).

The revision id was reserved for a cell table for bulk assignment; what landed under it is only
the change notification (see README, Benchmarks).

Revision ID: 0002_unit_cells
Revises: 0001
Create Date: 2026-11-23
"""

from alembic import op

revision = "0002_unit_cells"
down_revision = "0001"
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
