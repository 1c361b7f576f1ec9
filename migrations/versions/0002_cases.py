"""Cases: intake, assignment, workflow history, photos and the live event log.

Revision ID: 0002_cases
Revises: 0001
Create Date: 2026-11-22
"""

from alembic import op

revision = "0002_cases"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        r"""
        CREATE TABLE cases (
            id              bigserial PRIMARY KEY,
            number          text NOT NULL UNIQUE,
            idempotency_key uuid UNIQUE,
            request_hash    text,
            source          text NOT NULL,
            category        text NOT NULL,
            description     text NOT NULL,
            address         text,
            urgent          boolean NOT NULL DEFAULT false,
            reporter        jsonb,
            -- where: stored in EPSG:4490, plus what the client sent
            geom            geometry(Point, 4490) NOT NULL,
            input_crs       text NOT NULL,
            input_lon       float8,
            input_lat       float8,
            accuracy_m      float8 CHECK (accuracy_m >= 0),
            location_source text NOT NULL,
            -- the assignment made at intake (or at the last redraw), with its explanation
            assign_status   text NOT NULL,
            assign_rule     text NOT NULL,
            grid_code       varchar(18) REFERENCES units (code),
            grid_version    integer,
            distance_m      float8,
            assignment      jsonb NOT NULL,
            -- who is responsible now
            tier            text NOT NULL,
            unit_code       varchar(18) REFERENCES units (code),
            department      text,
            -- workflow: the status and the clock of its stage
            status          text NOT NULL,
            stage           text,
            stage_started_at timestamptz,
            stage_yellow_at timestamptz,
            stage_due_at    timestamptz,
            escalations     integer NOT NULL DEFAULT 0,
            merged_into     bigint REFERENCES cases (id),
            rating          text,
            reported_at     timestamptz NOT NULL DEFAULT now(),
            updated_at      timestamptz NOT NULL DEFAULT now(),
            closed_at       timestamptz,
            CHECK ((department IS NOT NULL) = (tier = 'department'))
        );
        CREATE INDEX cases_geom_idx ON cases USING gist (geom);
        CREATE INDEX cases_status_idx ON cases (status);
        CREATE INDEX cases_unit_idx ON cases (unit_code);
        CREATE INDEX cases_grid_idx ON cases (grid_code);
        CREATE INDEX cases_category_time_idx ON cases (category, reported_at);
        CREATE INDEX cases_due_idx ON cases (stage_due_at) WHERE stage_due_at IS NOT NULL;

        -- Every move, never rewritten: who, when, from, to, note, and the stage clock it left.
        CREATE TABLE case_history (
            id           bigserial PRIMARY KEY,
            case_id      bigint NOT NULL REFERENCES cases (id),
            at           timestamptz NOT NULL DEFAULT now(),
            actor        text NOT NULL,
            action       text NOT NULL,
            from_status  text,
            to_status    text NOT NULL,
            note         text,
            details      jsonb NOT NULL DEFAULT '{}',
            stage        text,
            stage_due_at timestamptz,
            on_time      boolean,
            tier         text NOT NULL,
            unit_code    varchar(18),
            department   text
        );
        CREATE INDEX case_history_case_idx ON case_history (case_id, id);
        CREATE INDEX case_history_at_idx ON case_history (at);

        CREATE FUNCTION case_history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'case history is append-only (entry %)', OLD.id;
        END $$;
        CREATE TRIGGER case_history_append_only BEFORE UPDATE OR DELETE ON case_history
            FOR EACH ROW EXECUTE FUNCTION case_history_append_only();

        CREATE TABLE case_photos (
            id           bigserial PRIMARY KEY,
            case_id      bigint NOT NULL REFERENCES cases (id),
            seq          smallint NOT NULL,
            content_type text NOT NULL,
            width        integer NOT NULL,
            height       integer NOT NULL,
            bytes        bytea NOT NULL,
            sha256       text NOT NULL,
            gps          geometry(Point, 4490),
            taken_at     timestamptz,
            UNIQUE (case_id, seq)
        );

        -- The live feed. Event ids are not in commit order (a slow transaction commits a lower id
        -- late), so readers deliver in (txid, id) order and only below a horizon: the oldest
        -- transaction still running in this database (case_events_horizon), so that a client
        -- resuming from its last event never skips one committed late.
        CREATE TABLE case_events (
            id      bigserial PRIMARY KEY,
            txid    xid8 NOT NULL DEFAULT pg_current_xact_id(),
            case_id bigint NOT NULL REFERENCES cases (id),
            at      timestamptz NOT NULL DEFAULT now(),
            kind    text NOT NULL,
            body    jsonb NOT NULL
        );
        CREATE INDEX case_events_order_idx ON case_events (txid, id);

        -- Every transaction id below this is finished, or belongs to another database (which
        -- cannot write case_events). pg_stat_activity shows 32-bit xids: widen them with the
        -- epoch of the snapshot's xmax. Call it in a statement of its own, before reading events.
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

        CREATE FUNCTION cases_publish() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO case_events (case_id, kind, body) VALUES (
                NEW.id,
                CASE TG_OP WHEN 'INSERT' THEN 'created' ELSE 'updated' END,
                jsonb_build_object(
                    'id', NEW.id, 'number', NEW.number, 'status', NEW.status,
                    'category', NEW.category, 'urgent', NEW.urgent,
                    'tier', NEW.tier, 'unit_code', NEW.unit_code, 'department', NEW.department,
                    'grid_code', NEW.grid_code, 'assign_status', NEW.assign_status,
                    'lon', ST_X(NEW.geom), 'lat', ST_Y(NEW.geom),
                    'stage', NEW.stage, 'stage_yellow_at', NEW.stage_yellow_at,
                    'stage_due_at', NEW.stage_due_at, 'updated_at', NEW.updated_at));
            -- Wake listeners in every server process; they read the log, not the payload.
            PERFORM pg_notify('case_events', '');
            RETURN NULL;
        END $$;
        CREATE TRIGGER cases_publish AFTER INSERT OR UPDATE ON cases
            FOR EACH ROW EXECUTE FUNCTION cases_publish();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE case_events;
        DROP TABLE case_photos;
        DROP TABLE case_history;
        DROP TABLE cases;
        DROP FUNCTION cases_publish();
        DROP FUNCTION case_events_horizon();
        DROP FUNCTION case_history_append_only();
        """
    )
