"""The grid raster as whole arrays read once per statement, not chunks joined per point.

Revision ID: 0008_grid_raster_arrays
Revises: 0007_grid_raster
Create Date: 2026-11-22
"""

from alembic import op

revision = "0008_grid_raster_arrays"
down_revision = "0007_grid_raster"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- A raster in the old layout is rebuilt by the next bulk run.
        TRUNCATE grid_raster, grid_raster_grids, grid_raster_parts;
        DROP TABLE grid_raster_chunks;
        ALTER TABLE grid_raster DROP COLUMN chunk;
        -- One row: the cell values, the edge and near cells' blocks, and the grid codes as numbers
        -- (store/grid_raster.py). Stored uncompressed: reading them back is a copy, not a
        -- decompression.
        CREATE TABLE grid_raster_cells (
            id     int PRIMARY KEY CHECK (id = 1),
            cells  int4[] NOT NULL,
            blocks int4[] NOT NULL,
            grids  int8[] NOT NULL
        );
        ALTER TABLE grid_raster_cells
            ALTER cells SET STORAGE EXTERNAL,
            ALTER blocks SET STORAGE EXTERNAL,
            ALTER grids SET STORAGE EXTERNAL;
        -- Snapping measures pieces on the spheroid; points in holes search them through the index.
        ALTER TABLE grid_raster_parts ADD COLUMN geog geography NOT NULL;
        CREATE INDEX grid_raster_parts_geom_idx ON grid_raster_parts USING gist (geom);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        TRUNCATE grid_raster, grid_raster_grids, grid_raster_parts;
        DROP INDEX grid_raster_parts_geom_idx;
        ALTER TABLE grid_raster_parts DROP COLUMN geog;
        DROP TABLE grid_raster_cells;
        ALTER TABLE grid_raster ADD COLUMN chunk int NOT NULL;
        CREATE TABLE grid_raster_chunks (
            key   int PRIMARY KEY,
            cells int4[] NOT NULL
        ) WITH (toast_tuple_target = 8160);
        """
    )
