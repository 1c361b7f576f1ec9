"""Simplified unit outlines per zoom band, for vector tiles at low zooms (issue 19 §2).

`unit_simplified` holds, per zoom band (geo/zoom_bands.py) and current unit of a level drawn in
that band, its outline in Web Mercator simplified as a coverage (shapely.coverage_simplify:
neighbours keep sharing their edges), made by services/tile_precompute.py whenever boundaries
change (import, plan publish). `source_id` is the unit_versions row it was made from: a row whose
unit has a newer version is stale. `unit_simplified_state` holds the boundary generation
(unit_change_count) the table was last brought up to: tiles use the table only when it equals
the current generation, else they are made from unit_versions as before.

Revision ID: 0018_simplified_units
Revises: 0017_cases_partitioned
Create Date: 2026-12-05
"""

from alembic import op

revision = "0018_simplified_units"
down_revision = "0017_cases_partitioned"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the table of simplified outlines and its state row."""
    op.execute(
        """
        CREATE TABLE unit_simplified (
            band smallint NOT NULL,
            level text NOT NULL,
            code text NOT NULL,
            source_id bigint NOT NULL,
            name text NOT NULL,
            kind text,
            special_type text,
            geom geometry(Geometry, 3857) NOT NULL,
            PRIMARY KEY (band, code)
        );
        -- A tile asks for one band and one level in a box: btree_gist (migration 0001) puts all
        -- three in one index, so a province-wide tile of counties never reads the grids.
        CREATE INDEX unit_simplified_tile ON unit_simplified USING gist (band, level, geom);
        CREATE INDEX unit_simplified_county ON unit_simplified (left(code, 6));
        CREATE TABLE unit_simplified_state (
            id smallint PRIMARY KEY CHECK (id = 1),
            generation bigint NOT NULL
        );
        INSERT INTO unit_simplified_state VALUES (1, -1);
        """
    )


def downgrade() -> None:
    """Drop them."""
    op.execute("DROP TABLE unit_simplified_state; DROP TABLE unit_simplified;")
