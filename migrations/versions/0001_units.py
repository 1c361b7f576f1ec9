"""Units, their boundary versions, staff and party cells.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    # btree_gist lets one exclusion constraint say "no two versions of a code overlap in time".
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")

    op.execute(
        r"""
        CREATE TABLE units (
            code        varchar(18) PRIMARY KEY CHECK (code ~ '^[0-9]{6}([0-9]{3}){0,4}$'),
            level       text NOT NULL CHECK (level IN ('county', 'street', 'community', 'grid', 'micro_grid')),
            parent_code varchar(18) REFERENCES units (code),
            created_at  timestamptz NOT NULL DEFAULT now(),
            CHECK (length(code) = CASE level WHEN 'county' THEN 6 WHEN 'street' THEN 9
                   WHEN 'community' THEN 12 WHEN 'grid' THEN 15 ELSE 18 END),
            CHECK ((parent_code IS NULL) = (level = 'county')),
            CHECK (parent_code IS NULL OR parent_code = left(code, length(code) - 3))
        );
        CREATE INDEX units_parent_idx ON units (parent_code);

        CREATE TABLE unit_versions (
            id           bigserial PRIMARY KEY,
            code         varchar(18) NOT NULL REFERENCES units (code),
            version      integer NOT NULL CHECK (version >= 1),
            name         text NOT NULL CHECK (name <> ''),
            kind         text CHECK (kind IN ('urban', 'rural', 'special')),
            special_type text CHECK (special_type IN ('industrial_park', 'business_district', 'school',
                                     'hospital', 'government', 'enterprise', 'other')),
            households   integer CHECK (households >= 0),
            population   integer CHECK (population >= 0),
            attributes   jsonb NOT NULL DEFAULT '{}',
            warnings     jsonb NOT NULL DEFAULT '[]',
            geom         geometry(MultiPolygon, 4490) NOT NULL
                         CHECK (NOT ST_IsEmpty(geom) AND ST_IsValid(geom)),
            valid_from   timestamptz NOT NULL,
            valid_to     timestamptz CHECK (valid_to > valid_from),
            UNIQUE (code, version),
            CHECK ((kind = 'special') = (special_type IS NOT NULL)),
            EXCLUDE USING gist (code WITH =, tstzrange(valid_from, valid_to) WITH &&)
        );
        CREATE INDEX unit_versions_geom_idx ON unit_versions USING gist (geom);
        CREATE UNIQUE INDEX unit_versions_current_idx ON unit_versions (code) WHERE valid_to IS NULL;

        -- Small pieces of every version's polygon: point lookups test a few vertices, not thousands.
        -- Derived data kept by triggers; code, level, kind and validity are copied so that lookups
        -- need no join, and the current grids have an index of their own.
        CREATE TABLE unit_parts (
            id         bigserial PRIMARY KEY,
            version_id bigint NOT NULL REFERENCES unit_versions (id),
            code       varchar(18) NOT NULL,
            level      text NOT NULL,
            kind       text,
            valid_from timestamptz NOT NULL,
            valid_to   timestamptz,
            geom       geometry(Polygon, 4490) NOT NULL
        );
        CREATE INDEX unit_parts_geom_idx ON unit_parts USING gist (geom);
        CREATE INDEX unit_parts_current_idx ON unit_parts USING gist (geom) WHERE valid_to IS NULL;
        CREATE INDEX unit_parts_current_grids_idx ON unit_parts USING gist (geom)
            WHERE valid_to IS NULL AND level = 'grid';
        CREATE INDEX unit_parts_version_idx ON unit_parts (version_id);

        CREATE FUNCTION unit_versions_subdivide() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO unit_parts (version_id, code, level, kind, valid_from, valid_to, geom)
            SELECT NEW.id, NEW.code, u.level, NEW.kind, NEW.valid_from, NEW.valid_to, ST_Subdivide(NEW.geom, 32)
            FROM units u WHERE u.code = NEW.code;
            RETURN NULL;
        END $$;
        CREATE TRIGGER unit_versions_subdivide AFTER INSERT ON unit_versions
            FOR EACH ROW EXECUTE FUNCTION unit_versions_subdivide();

        CREATE FUNCTION unit_versions_close_parts() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE unit_parts SET valid_to = NEW.valid_to WHERE version_id = NEW.id;
            RETURN NULL;
        END $$;
        CREATE TRIGGER unit_versions_close_parts AFTER UPDATE OF valid_to ON unit_versions
            FOR EACH ROW EXECUTE FUNCTION unit_versions_close_parts();

        -- A version is history: the only change allowed is closing it (setting valid_to once).
        CREATE FUNCTION unit_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                RAISE EXCEPTION 'unit versions are never deleted (unit %, version %)', OLD.code, OLD.version;
            END IF;
            IF OLD.valid_to IS NOT NULL
               OR (to_jsonb(NEW) - 'valid_to') IS DISTINCT FROM (to_jsonb(OLD) - 'valid_to') THEN
                RAISE EXCEPTION 'unit versions are never rewritten (unit %, version %): add a new version',
                    OLD.code, OLD.version;
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER unit_versions_immutable BEFORE UPDATE OR DELETE ON unit_versions
            FOR EACH ROW EXECUTE FUNCTION unit_versions_immutable();

        CREATE TABLE staff (
            id         bigserial PRIMARY KEY,
            unit_code  varchar(18) NOT NULL REFERENCES units (code),
            role       text NOT NULL CHECK (role IN ('grid_chief', 'full_time', 'part_time',
                                                     'volunteer', 'building_head')),
            name       text NOT NULL CHECK (name <> ''),
            phone      text,
            attributes jsonb NOT NULL DEFAULT '{}'
        );
        CREATE INDEX staff_unit_idx ON staff (unit_code);

        CREATE TABLE party_cells (
            id        bigserial PRIMARY KEY,
            unit_code varchar(18) NOT NULL REFERENCES units (code),
            kind      text NOT NULL CHECK (kind IN ('branch', 'group', 'central_household', 'instructor')),
            name      text NOT NULL CHECK (name <> ''),
            members   integer CHECK (members >= 0),
            phone     text,
            location  geometry(Point, 4490),
            CHECK ((kind = 'central_household') = (location IS NOT NULL))
        );
        CREATE INDEX party_cells_unit_idx ON party_cells (unit_code);
        CREATE INDEX party_cells_location_idx ON party_cells USING gist (location);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE party_cells;
        DROP TABLE staff;
        DROP TABLE unit_parts;
        DROP TABLE unit_versions;
        DROP TABLE units;
        DROP FUNCTION unit_versions_subdivide();
        DROP FUNCTION unit_versions_immutable();
        DROP FUNCTION unit_versions_close_parts();
        """
    )
