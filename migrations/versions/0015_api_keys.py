"""Read-only API keys a user creates for a desktop GIS or a map client (tiles, TileJSON, map data).

Only a keyed hash (HMAC, as for tokens) of a key is stored; `prefix` is its first characters,
shown in lists so that the owner can tell keys apart.

Revision ID: 0015_api_keys
Revises: 0014_coverage_not_patrolled
Create Date: 2026-12-05
"""

from alembic import op

revision = "0015_api_keys"
down_revision = "0014_coverage_not_patrolled"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE api_keys (
            id          bigserial PRIMARY KEY,
            key_hash    text NOT NULL UNIQUE,
            prefix      text NOT NULL,
            user_id     bigint NOT NULL REFERENCES users (id),
            name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
            created_at  timestamptz NOT NULL,
            expires_at  timestamptz NOT NULL CHECK (expires_at > created_at),
            revoked_at  timestamptz
        );
        CREATE INDEX api_keys_user_idx ON api_keys (user_id);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE api_keys")
