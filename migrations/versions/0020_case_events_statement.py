"""The live feed's events written once a statement, not once a row (issue 19 §2: a redraw of a
whole county updates 70,000 open cases in one statement).

`cases_publish` was a row trigger: one PL/pgSQL call, one INSERT into `case_events` and one
pg_notify for every case a statement wrote. Two statement triggers with transition tables (one
for INSERT, one for UPDATE: a trigger with transition tables has one event) write the same
events, one a case in id order, with one INSERT and one pg_notify a statement. Events, their
order of delivery (txid, id) and their bodies are as before.

Revision ID: 0020_case_events_statement
Revises: 0019_case_rollup
Create Date: 2026-12-05
"""

from alembic import op

revision = "0020_case_events_statement"
down_revision = "0019_case_rollup"
branch_labels = None
depends_on = None

# The body of an event: the case as the live feed sends it (unchanged from 0002_cases).
BODY = """jsonb_build_object(
        'id', n.id, 'number', n.number, 'status', n.status,
        'category', n.category, 'urgent', n.urgent,
        'tier', n.tier, 'unit_code', n.unit_code, 'department', n.department,
        'grid_code', n.grid_code, 'assign_status', n.assign_status,
        'lon', ST_X(n.geom), 'lat', ST_Y(n.geom),
        'stage', n.stage, 'stage_yellow_at', n.stage_yellow_at,
        'stage_due_at', n.stage_due_at, 'updated_at', n.updated_at)"""


def upgrade() -> None:
    op.execute(
        f"""
        DROP TRIGGER cases_publish ON cases;
        DROP FUNCTION cases_publish();
        CREATE FUNCTION cases_publish() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO case_events (case_id, kind, body)
            SELECT n.id, CASE TG_OP WHEN 'INSERT' THEN 'created' ELSE 'updated' END, {BODY}
            FROM written n ORDER BY n.id;
            -- Wake listeners in every server process; they read the log, not the payload.
            IF FOUND THEN
                PERFORM pg_notify('case_events', '');
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER cases_publish_insert AFTER INSERT ON cases
            REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION cases_publish();
        CREATE TRIGGER cases_publish_update AFTER UPDATE ON cases
            REFERENCING NEW TABLE AS written FOR EACH STATEMENT EXECUTE FUNCTION cases_publish();
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        DROP TRIGGER cases_publish_insert ON cases;
        DROP TRIGGER cases_publish_update ON cases;
        DROP FUNCTION cases_publish();
        CREATE FUNCTION cases_publish() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO case_events (case_id, kind, body) VALUES (
                NEW.id, CASE TG_OP WHEN 'INSERT' THEN 'created' ELSE 'updated' END,
                {BODY.replace("n.", "NEW.")});
            PERFORM pg_notify('case_events', '');
            RETURN NULL;
        END $$;
        CREATE TRIGGER cases_publish AFTER INSERT OR UPDATE ON cases
            FOR EACH ROW EXECUTE FUNCTION cases_publish();
        """
    )
