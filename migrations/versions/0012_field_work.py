"""Field work: before/after photos, idempotent moves, where a report's point came from, patrols.

Revision ID: 0012_field_work
Revises: 0011_idempotency_scope
Create Date: 2026-12-05
"""

from alembic import op

revision = "0012_field_work"
down_revision = "0011_idempotency_scope"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- 处置前 / 处置后: photos sent with the report are "before", photos sent with a move "after".
        ALTER TABLE case_photos ADD COLUMN stage text NOT NULL DEFAULT 'before'
            CHECK (stage IN ('before', 'after'));

        -- A move sent again with the same key (a phone retrying after a lost answer) is made once.
        CREATE TABLE case_move_keys (
            key          uuid PRIMARY KEY,
            case_id      bigint NOT NULL REFERENCES cases (id),
            request_hash text NOT NULL,
            at           timestamptz NOT NULL DEFAULT now()
        );

        -- How the reporter placed the point: the phone's GPS, a pin they moved, a photo's EXIF.
        ALTER TABLE cases ADD COLUMN location_method text
            CHECK (location_method IN ('gps', 'pin', 'photo'));

        -- 巡查轨迹: personal data (only the worker, supervisors in jurisdiction and admins see
        -- them), deleted after the retention period.
        CREATE TABLE patrols (
            id              bigserial PRIMARY KEY,
            idempotency_key uuid UNIQUE,
            username        text NOT NULL,
            unit_code       varchar(18) NOT NULL REFERENCES units (code),
            started_at      timestamptz NOT NULL,
            ended_at        timestamptz NOT NULL,
            length_m        float8 NOT NULL CHECK (length_m >= 0),
            points          integer NOT NULL CHECK (points >= 2),
            dropped         jsonb NOT NULL DEFAULT '{}',
            track           geometry(LineString, 4490) NOT NULL,
            grids           text[] NOT NULL DEFAULT '{}',
            created_at      timestamptz NOT NULL DEFAULT now(),
            CHECK (ended_at >= started_at)
        );
        CREATE INDEX patrols_track_idx ON patrols USING gist (track);
        CREATE INDEX patrols_started_idx ON patrols (started_at);
        CREATE INDEX patrols_user_idx ON patrols (username, started_at);
        CREATE INDEX patrols_unit_idx ON patrols (unit_code text_pattern_ops);
        CREATE INDEX patrols_grids_idx ON patrols USING gin (grids);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE patrols;
        ALTER TABLE cases DROP COLUMN location_method;
        DROP TABLE case_move_keys;
        ALTER TABLE case_photos DROP COLUMN stage;
        """
    )
