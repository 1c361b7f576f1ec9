"""Digests of imported features, and the lookup parts kept per statement (issue 19 §2: the import).

`unit_import_digests` holds, per unit version an import wrote or confirmed, the digest of the
feature it was read from (geo/import_digest.py: the row's cells and geometry as read, the CRS it
was read in, --repair): a re-import whose feature has the digest of the unit's current version
says nothing new about it, and is known unchanged without converting or checking it again. It is
derived data, not history (unit versions stay immutable): a version without a digest (a plan's, or
one stored before this migration) is compared as before, and the import that finds it unchanged
records its digest, so the next re-import of that file is quick. Nothing to backfill: a digest is
of the file as read, which the store does not keep.

The row triggers that kept `unit_parts` (0001: one ST_Subdivide and one INSERT per new version,
one UPDATE per closed version) become statement triggers over the transition tables: one
INSERT … SELECT and one UPDATE … FROM per statement, the same rows.

Revision ID: 0021_import_digests
Revises: 0020_case_events_statement
Create Date: 2026-12-05
"""

from alembic import op

revision = "0021_import_digests"
down_revision = "0020_case_events_statement"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the digests table; make the unit_parts triggers set-based."""
    op.execute(
        """
        CREATE TABLE unit_import_digests (
            version_id bigint PRIMARY KEY REFERENCES unit_versions (id),
            digest     bytea NOT NULL
        );

        DROP TRIGGER unit_versions_subdivide ON unit_versions;
        DROP FUNCTION unit_versions_subdivide();
        CREATE FUNCTION unit_versions_subdivide() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO unit_parts (version_id, code, level, kind, valid_from, valid_to, geom)
            SELECT n.id, n.code, u.level, n.kind, n.valid_from, n.valid_to, ST_Subdivide(n.geom, 32)
            FROM new_versions n JOIN units u ON u.code = n.code;
            RETURN NULL;
        END $$;
        CREATE TRIGGER unit_versions_subdivide AFTER INSERT ON unit_versions
            REFERENCING NEW TABLE AS new_versions
            FOR EACH STATEMENT EXECUTE FUNCTION unit_versions_subdivide();

        -- A trigger with transition tables cannot name columns (UPDATE OF valid_to): it compares.
        DROP TRIGGER unit_versions_close_parts ON unit_versions;
        DROP FUNCTION unit_versions_close_parts();
        CREATE FUNCTION unit_versions_close_parts() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE unit_parts p SET valid_to = n.valid_to
            FROM new_versions n
            WHERE p.version_id = n.id AND p.valid_to IS DISTINCT FROM n.valid_to;
            RETURN NULL;
        END $$;
        CREATE TRIGGER unit_versions_close_parts AFTER UPDATE ON unit_versions
            REFERENCING NEW TABLE AS new_versions
            FOR EACH STATEMENT EXECUTE FUNCTION unit_versions_close_parts();
        """
    )


def downgrade() -> None:
    """Back to 0001's row triggers; drop the digests."""
    op.execute(
        """
        DROP TRIGGER unit_versions_close_parts ON unit_versions;
        DROP FUNCTION unit_versions_close_parts();
        CREATE FUNCTION unit_versions_close_parts() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE unit_parts SET valid_to = NEW.valid_to WHERE version_id = NEW.id;
            RETURN NULL;
        END $$;
        CREATE TRIGGER unit_versions_close_parts AFTER UPDATE OF valid_to ON unit_versions
            FOR EACH ROW EXECUTE FUNCTION unit_versions_close_parts();

        DROP TRIGGER unit_versions_subdivide ON unit_versions;
        DROP FUNCTION unit_versions_subdivide();
        CREATE FUNCTION unit_versions_subdivide() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO unit_parts (version_id, code, level, kind, valid_from, valid_to, geom)
            SELECT NEW.id, NEW.code, u.level, NEW.kind, NEW.valid_from, NEW.valid_to, ST_Subdivide(NEW.geom, 32)
            FROM units u WHERE u.code = NEW.code;
            RETURN NULL;
        END $$;
        CREATE TRIGGER unit_versions_subdivide AFTER INSERT ON unit_versions
            FOR EACH ROW EXECUTE FUNCTION unit_versions_subdivide();

        DROP TABLE unit_import_digests;
        """
    )
