"""The live feed's delivery horizon: the current snapshot's xmin (issue 13 §1).

0002's case_events_horizon widened pg_stat_activity's 32-bit xids with the epoch of the snapshot's
xmax. A transaction that began after the snapshot was taken (its xid above xmax) was taken for one
of the previous epoch, 2^32 was subtracted, and the negative result wrapped when cast to xid8:
the horizon was switched off, and events committed late, below a delivered cursor, were skipped.

The snapshot itself knows the answer, with no arithmetic: every transaction id below
pg_snapshot_xmin(pg_current_snapshot()) has finished (committed or rolled back), and any id given
out later is at least its xmax. Events carry their writer's 64-bit id (case_events.txid, xid8,
pg_current_xact_id()), so they compare with it directly. Used in the statement that reads the
events, it is the same snapshot: every event below it that committed is visible to that read.

Revision ID: 0009_events_horizon
Revises: 0008_grid_raster_arrays
Create Date: 2026-12-05
"""

from alembic import op

revision = "0009_events_horizon"
down_revision = "0008_grid_raster_arrays"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        r"""
        DROP FUNCTION case_events_horizon();
        -- STABLE and one SELECT: it runs in the snapshot of the statement that calls it.
        CREATE FUNCTION case_events_horizon() RETURNS xid8 LANGUAGE sql STABLE AS $$
            SELECT pg_snapshot_xmin(pg_current_snapshot())
        $$;
        COMMENT ON FUNCTION case_events_horizon() IS
            'Events of transactions below this are final in the calling statement''s snapshot';
        """
    )


def downgrade() -> None:
    op.execute(
        r"""
        DROP FUNCTION case_events_horizon();
        CREATE FUNCTION case_events_horizon() RETURNS bigint LANGUAGE sql STABLE AS $$
            WITH s AS (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax),
            running AS (
                SELECT ((s.xmax >> 32) << 32) | a.backend_xid::text::bigint AS x, s.xmax
                FROM pg_stat_activity a, s
                WHERE a.datname = current_database() AND a.backend_xid IS NOT NULL
                  AND a.pid <> pg_backend_pid())
            SELECT least(s.xmax, min(CASE WHEN r.x > r.xmax THEN r.x - 4294967296 ELSE r.x END))
            FROM s LEFT JOIN running r ON true GROUP BY s.xmax
        $$;
        """
    )
