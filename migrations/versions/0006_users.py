"""Users, their tokens and sessions, and the append-only audit log.

Revision ID: 0006_users
Revises: 0005_plans
Create Date: 2026-11-22
"""

from alembic import op

revision = "0006_users"
down_revision = "0005_plans"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        r"""
        CREATE TABLE users (
            id            bigserial PRIMARY KEY,
            username      text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.@-]{2,64}$'),
            password_hash text NOT NULL,
            role          text NOT NULL,
            unit_code     varchar(18) NOT NULL REFERENCES units (code),
            department    text,
            disabled      boolean NOT NULL DEFAULT false,
            failed_logins integer NOT NULL DEFAULT 0,
            locked_until  timestamptz,
            created_at    timestamptz NOT NULL DEFAULT now(),
            CHECK ((role = 'department') = (department IS NOT NULL))
        );

        -- Bearer access and refresh tokens and page sessions: only a keyed hash of each is stored.
        CREATE TABLE auth_tokens (
            token_hash  text PRIMARY KEY,
            user_id     bigint NOT NULL REFERENCES users (id),
            kind        text NOT NULL CHECK (kind IN ('access', 'refresh', 'session')),
            family      uuid NOT NULL,  -- a login: its access, refresh and session tokens, revoked together
            created_at  timestamptz NOT NULL DEFAULT now(),
            expires_at  timestamptz NOT NULL,
            revoked_at  timestamptz
        );
        CREATE INDEX auth_tokens_user_idx ON auth_tokens (user_id);
        CREATE INDEX auth_tokens_family_idx ON auth_tokens (family);

        CREATE TABLE audit_log (
            id       bigserial PRIMARY KEY,
            at       timestamptz NOT NULL DEFAULT clock_timestamp(),
            actor    text NOT NULL,
            action   text NOT NULL,
            target   text,
            details  jsonb NOT NULL DEFAULT '{}',
            ip       text
        );
        CREATE INDEX audit_log_at_idx ON audit_log (at);

        CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the audit log is append-only (% refused)', TG_OP;
        END $$;
        CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
            FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
        CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
            FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE audit_log;
        DROP FUNCTION audit_log_append_only();
        DROP TABLE auth_tokens;
        DROP TABLE users;
        """
    )
