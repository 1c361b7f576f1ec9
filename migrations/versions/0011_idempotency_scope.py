"""The first answer to each keyed report, so that a retry gets exactly that answer again.

Keys themselves are scoped to their caller before they are stored (cases.model.scoped_key): the
column `cases.idempotency_key` keeps its unique index and now holds the scoped key.

Revision ID: 0011_idempotency_scope
Revises: 0010_rate_limits
Create Date: 2026-12-05
"""

from alembic import op

revision = "0011_idempotency_scope"
down_revision = "0010_rate_limits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- The answer as first sent (JSON text, byte for byte: jsonb would reorder its keys).
        -- Written in the intake's own transaction, so a retry waiting on the key's unique index
        -- finds it as soon as it finds the case.
        CREATE TABLE case_receipts (
            case_id   bigint PRIMARY KEY REFERENCES cases (id),
            answer    text NOT NULL,
            stored_at timestamptz NOT NULL DEFAULT now()
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE case_receipts")
