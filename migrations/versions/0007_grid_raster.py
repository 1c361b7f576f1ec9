"""A raster of the current grids kept in PostGIS for bulk assignment (store/grid_raster.py).

Revision ID: 0007_grid_raster
Revises: 0006_users
Create Date: 2026-11-22
"""

from alembic import op

revision = "0007_grid_raster"
down_revision = "0006_users"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- Counts the statements that wrote unit versions. It is a row, not a sequence, so that a
        -- reader sees the count that belongs to its snapshot of the grids: a raster built from an
        -- older count is stale. The one trigger on unit versions both counts and notifies
        -- (replacing 0003's, which only notified).
        CREATE TABLE unit_change_count (
            id int PRIMARY KEY CHECK (id = 1),
            n  bigint NOT NULL
        );
        INSERT INTO unit_change_count VALUES (1, 0);
        CREATE FUNCTION unit_versions_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE unit_change_count SET n = n + 1 WHERE id = 1;
            PERFORM pg_notify('unit_changes', '');
            RETURN NULL;
        END $$;
        DROP TRIGGER unit_versions_notify ON unit_versions;
        DROP FUNCTION unit_versions_notify();
        CREATE TRIGGER unit_versions_changed AFTER INSERT OR UPDATE OR DELETE ON unit_versions
            FOR EACH STATEMENT EXECUTE FUNCTION unit_versions_changed();

        -- What the raster was built from and how its cells are laid out (one row).
        CREATE TABLE grid_raster (
            id            int PRIMARY KEY CHECK (id = 1),
            format        int NOT NULL,  -- store.grid_raster.FORMAT: the layout of the cells
            unit_changes  bigint NOT NULL,
            tolerance_m   float8 NOT NULL,
            x0            float8 NOT NULL,
            y0            float8 NOT NULL,
            dx            float8 NOT NULL,
            dy            float8 NOT NULL,
            ncols         int NOT NULL,
            nrows         int NOT NULL,
            chunk         int NOT NULL,
            edge_share    float8 NOT NULL,
            built_at      timestamptz NOT NULL DEFAULT now(),
            build_seconds float8 NOT NULL
        );
        -- The raster's grid numbers.
        CREATE TABLE grid_raster_grids (
            idx        int PRIMARY KEY,
            code       varchar(18) NOT NULL,
            version_id bigint NOT NULL
        );
        -- The pieces (unit_parts) of each grid number, for the exact tests: one join, not two.
        CREATE TABLE grid_raster_parts (
            idx  int NOT NULL,
            code varchar(18) NOT NULL,
            geom geometry(Polygon, 4490) NOT NULL
        );
        -- One row per chunk of cells along a raster row: the cells' values, then the candidate
        -- lists of its edge cells. Rows up to a page stay inline and uncompressed, so reading a
        -- cell is an offset, not a decompression.
        CREATE TABLE grid_raster_chunks (
            key   int PRIMARY KEY,
            cells int4[] NOT NULL
        ) WITH (toast_tuple_target = 8160);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE grid_raster_chunks;
        DROP TABLE grid_raster_parts;
        DROP TABLE grid_raster_grids;
        DROP TABLE grid_raster;
        DROP TRIGGER unit_versions_changed ON unit_versions;
        DROP FUNCTION unit_versions_changed();
        DROP TABLE unit_change_count;
        CREATE FUNCTION unit_versions_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('unit_changes', '');
            RETURN NULL;
        END $$;
        CREATE TRIGGER unit_versions_notify AFTER INSERT OR UPDATE ON unit_versions
            FOR EACH STATEMENT EXECUTE FUNCTION unit_versions_notify();
        """
    )
