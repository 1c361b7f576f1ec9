"""Province (2 digits) and city (4 digits) units above the county, GB/T 2260 (issue 19 §1).

The units table's code CHECK becomes geo.codes.CODE_PATTERN (one segment rule per level: no city
or county 00, no street, community or micro-grid 000); levels province and city; a unit's parent
is its code minus its own level's digits; a province, city or county may have no parent (regions
above the county are optional: a county deployment has none).

Revision ID: 0016_province_levels
Revises: 0015_api_keys
Create Date: 2026-12-05
"""

from alembic import op

revision = "0016_province_levels"
down_revision = "0015_api_keys"
branch_labels = None
depends_on = None

# geo.codes.CODE_PATTERN when this revision was written (a migration does not import the code
# it outlives; tests/store/test_province_levels.py checks the two agree).
_TWO = "(0[1-9]|[1-9][0-9])"
_THREE = "(00[1-9]|0[1-9][0-9]|[1-9][0-9]{2})"
_SEGMENTS = ("[1-9][0-9]", _TWO, _TWO, _THREE, _THREE, "[0-9]{3}", _THREE)
CODE_PATTERN = "^(" + "|".join("".join(_SEGMENTS[: n + 1]) for n in range(len(_SEGMENTS))) + ")$"
OLD_PATTERN = "^[0-9]{6}([0-9]{3}){0,4}$"


def _drop_unit_checks() -> None:
    # The CHECKs of 0001 were unnamed: drop whatever checks the table has, then name the new ones.
    op.execute(
        """
        DO $$
        DECLARE c text;
        BEGIN
            FOR c IN SELECT conname FROM pg_constraint
                     WHERE conrelid = 'units'::regclass AND contype = 'c'
            LOOP
                EXECUTE format('ALTER TABLE units DROP CONSTRAINT %I', c);
            END LOOP;
        END $$;
        """
    )


def upgrade() -> None:
    _drop_unit_checks()
    op.execute(
        f"""
        ALTER TABLE units
            ADD CONSTRAINT units_code_format CHECK (code ~ '{CODE_PATTERN}'),
            ADD CONSTRAINT units_level_known CHECK (level IN
                ('province', 'city', 'county', 'street', 'community', 'grid', 'micro_grid')),
            ADD CONSTRAINT units_code_length CHECK (length(code) = CASE level
                WHEN 'province' THEN 2 WHEN 'city' THEN 4 WHEN 'county' THEN 6 WHEN 'street' THEN 9
                WHEN 'community' THEN 12 WHEN 'grid' THEN 15 ELSE 18 END),
            ADD CONSTRAINT units_parent_needed CHECK (
                parent_code IS NOT NULL OR level IN ('province', 'city', 'county')),
            ADD CONSTRAINT units_province_top CHECK (level <> 'province' OR parent_code IS NULL),
            ADD CONSTRAINT units_parent_prefix CHECK (parent_code IS NULL OR parent_code = left(code,
                CASE level WHEN 'city' THEN 2 WHEN 'county' THEN 4 ELSE length(code) - 3 END))
        """
    )


def downgrade() -> None:
    op.execute("UPDATE units SET parent_code = NULL WHERE level = 'county'")
    _drop_unit_checks()
    op.execute(
        f"""
        ALTER TABLE units
            ADD CHECK (code ~ '{OLD_PATTERN}'),
            ADD CHECK (level IN ('county', 'street', 'community', 'grid', 'micro_grid')),
            ADD CHECK (length(code) = CASE level WHEN 'county' THEN 6 WHEN 'street' THEN 9
                   WHEN 'community' THEN 12 WHEN 'grid' THEN 15 ELSE 18 END),
            ADD CHECK ((parent_code IS NULL) = (level = 'county')),
            ADD CHECK (parent_code IS NULL OR parent_code = left(code, length(code) - 3))
        """
    )
