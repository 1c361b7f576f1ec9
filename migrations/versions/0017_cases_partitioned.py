"""Cases partitioned by month of report time (issue 19 §2: 10 million cases a year).

`cases` becomes a table partitioned by range of `reported_at`, one partition a month in Beijing
time (`cases_2026_12` holds December 2026), made ahead by the service (services.case_partitions).
A partitioned table's primary and unique keys must hold the partition key, so `cases` is keyed
(id, reported_at), and the new table `case_ids` (id, idempotency_key) keeps what must
be unique across every month: a case's id (the API's ids are unchanged) and its Idempotency-Key.
Everything that referenced `cases (id)` (history, photos, events, receipts, move keys, a merged
case) references `case_ids (id)` now. Case numbers are made from the unique id, so they stay
unique without an index across partitions.

Revision ID: 0017_cases_partitioned
Revises: 0016_province_levels
Create Date: 2026-12-05
"""

from alembic import op

revision = "0017_cases_partitioned"
down_revision = "0016_province_levels"
branch_labels = None
depends_on = None

# The tables whose case_id referenced cases (id), and their constraint names.
REFERENCING = {
    "case_history": "case_history_case_id_fkey",
    "case_photos": "case_photos_case_id_fkey",
    "case_events": "case_events_case_id_fkey",
    "case_receipts": "case_receipts_case_id_fkey",
    "case_move_keys": "case_move_keys_case_id_fkey",
}
MONTHS_AHEAD = 3  # cases.partitions.MONTHS_AHEAD when this revision was written

INDEXES = """
    CREATE INDEX cases_geom_idx ON cases USING gist (geom);
    CREATE INDEX cases_status_idx ON cases (status);
    CREATE INDEX cases_unit_idx ON cases (unit_code);
    CREATE INDEX cases_grid_idx ON cases (grid_code);
    CREATE INDEX cases_category_time_idx ON cases (category, reported_at);
    CREATE INDEX cases_due_idx ON cases (stage_due_at) WHERE stage_due_at IS NOT NULL;
"""
# Open cases are a few in a hundred of a year's: the dispatcher's list, the dashboard's open counts
# and a redraw's candidates read them by unit or grid through these (a partial index per month).
OPEN_INDEXES = """
    CREATE INDEX cases_open_unit_idx ON cases (unit_code) WHERE status <> ALL ('{closed,revisited,voided,merged}');
    CREATE INDEX cases_open_grid_idx ON cases (grid_code) WHERE status <> ALL ('{closed,revisited,voided,merged}');
"""
# A case inserted by a statement that did not register its id (intake does, with ON CONFLICT on
# the key) registers it here; a key used before is refused by case_ids' unique index.
REGISTER = """
    CREATE FUNCTION cases_register_id() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO case_ids (id, idempotency_key) VALUES (NEW.id, NEW.idempotency_key)
            ON CONFLICT (id) DO NOTHING;
        RETURN NEW;
    END $$;
    CREATE TRIGGER cases_register_id BEFORE INSERT ON cases
        FOR EACH ROW EXECUTE FUNCTION cases_register_id();
"""
PUBLISH = """CREATE TRIGGER cases_publish AFTER INSERT OR UPDATE ON cases
    FOR EACH ROW EXECUTE FUNCTION cases_publish()"""


def upgrade() -> None:
    for table, name in REFERENCING.items():
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    op.execute(
        """
        ALTER TABLE cases RENAME TO cases_unpartitioned;
        ALTER INDEX cases_pkey RENAME TO cases_unpartitioned_pkey;
        ALTER SEQUENCE cases_id_seq OWNED BY NONE;
        CREATE TABLE case_ids (
            id              bigint PRIMARY KEY,
            idempotency_key uuid UNIQUE
        );
        INSERT INTO case_ids (id, idempotency_key) SELECT id, idempotency_key FROM cases_unpartitioned;
        ALTER SEQUENCE cases_id_seq OWNED BY case_ids.id;
        CREATE TABLE cases (LIKE cases_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
            PARTITION BY RANGE (reported_at);
        ALTER TABLE cases ADD PRIMARY KEY (id, reported_at),
            ADD CONSTRAINT cases_id_fkey FOREIGN KEY (id) REFERENCES case_ids (id),
            ADD CONSTRAINT cases_grid_code_fkey FOREIGN KEY (grid_code) REFERENCES units (code),
            ADD CONSTRAINT cases_unit_code_fkey FOREIGN KEY (unit_code) REFERENCES units (code),
            ADD CONSTRAINT cases_merged_into_fkey FOREIGN KEY (merged_into) REFERENCES case_ids (id);
        """
    )
    # The months of the stored cases, and this month and the next ones (Beijing time).
    op.execute(
        f"""
        DO $$
        DECLARE m timestamp; first timestamp; last timestamp;
        BEGIN
            SELECT date_trunc('month', min(reported_at) AT TIME ZONE 'Asia/Shanghai'),
                   date_trunc('month', max(reported_at) AT TIME ZONE 'Asia/Shanghai')
              INTO first, last FROM cases_unpartitioned;
            m := date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai');
            first := least(coalesce(first, m), m);
            last := greatest(coalesce(last, m), m + interval '{MONTHS_AHEAD} months');
            m := first;
            WHILE m <= last LOOP
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF cases FOR VALUES FROM (%L) TO (%L)',
                    'cases_' || to_char(m, 'YYYY_MM'), m::text || '+08',
                    (m + interval '1 month')::text || '+08');
                m := m + interval '1 month';
            END LOOP;
        END $$;
        """
    )
    op.execute("INSERT INTO cases SELECT * FROM cases_unpartitioned")
    op.execute("DROP TABLE cases_unpartitioned")
    op.execute(INDEXES)
    op.execute(OPEN_INDEXES)
    op.execute(PUBLISH)
    op.execute(REGISTER)
    for table, name in REFERENCING.items():
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY (case_id) REFERENCES case_ids (id)"
        )


def downgrade() -> None:
    for table, name in REFERENCING.items():
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    op.execute(
        f"""
        ALTER TABLE cases RENAME TO cases_partitioned;
        ALTER INDEX cases_pkey RENAME TO cases_partitioned_pkey;
        ALTER SEQUENCE cases_id_seq OWNED BY NONE;
        CREATE TABLE cases (LIKE cases_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
        INSERT INTO cases SELECT * FROM cases_partitioned;
        DROP TABLE cases_partitioned;
        DROP TABLE case_ids;
        DROP FUNCTION cases_register_id();
        ALTER SEQUENCE cases_id_seq OWNED BY cases.id;
        ALTER TABLE cases ADD PRIMARY KEY (id),
            ADD CONSTRAINT cases_number_key UNIQUE (number),
            ADD CONSTRAINT cases_idempotency_key_key UNIQUE (idempotency_key),
            ADD CONSTRAINT cases_grid_code_fkey FOREIGN KEY (grid_code) REFERENCES units (code),
            ADD CONSTRAINT cases_unit_code_fkey FOREIGN KEY (unit_code) REFERENCES units (code),
            ADD CONSTRAINT cases_merged_into_fkey FOREIGN KEY (merged_into) REFERENCES cases (id);
        {INDEXES}
        {PUBLISH};
        """
    )
    for table, name in REFERENCING.items():
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY (case_id) REFERENCES cases (id)")
