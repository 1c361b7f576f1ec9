"""Rate limits and login throttles shared by every server process; no more hard account locks.

Revision ID: 0010_rate_limits
Revises: 0009_events_horizon
Create Date: 2026-12-05

Counts kept in one process let N workers admit N times the limit; kept here, every process
counts against the same rows. Both tables are UNLOGGED: no WAL per request, and after a crash
of the database they start empty, which only forgives a few counts.
"""

from alembic import op

revision = "0010_rate_limits"
down_revision = "0009_events_horizon"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- Requests per key (a limit's name and a client address) and fixed window; the limit is
        -- checked against this window's hits plus the previous window's, weighted by how much of
        -- it still lies inside the sliding window (store.throttles).
        CREATE UNLOGGED TABLE rate_limits (
            key         text NOT NULL,
            window_no   bigint NOT NULL,   -- floor(epoch seconds / window length)
            hits        integer NOT NULL,
            expires_at  timestamptz NOT NULL,  -- of no use after this: pruned
            PRIMARY KEY (key, window_no)
        );
        CREATE INDEX rate_limits_expires_idx ON rate_limits (expires_at);

        -- Failed logins per user name (as typed, existing or not) and client address: an
        -- exponential delay for that pair only, so an attacker elsewhere cannot lock the owner out.
        CREATE UNLOGGED TABLE login_failures (
            username        text NOT NULL,
            address         text NOT NULL,
            failures        integer NOT NULL DEFAULT 0,
            last_failure_at timestamptz,
            blocked_until   timestamptz,
            PRIMARY KEY (username, address)
        );
        CREATE INDEX login_failures_last_idx ON login_failures (last_failure_at);

        -- The old per-account lock (five failures from anywhere locked the owner out) is gone.
        ALTER TABLE users DROP COLUMN failed_logins, DROP COLUMN locked_until;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE users ADD COLUMN failed_logins integer NOT NULL DEFAULT 0,
                          ADD COLUMN locked_until timestamptz;
        DROP TABLE login_failures;
        DROP TABLE rate_limits;
        """
    )
