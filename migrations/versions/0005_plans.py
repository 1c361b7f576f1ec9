"""Draft plans (redrawing): plans, their edits, what a publish changed, and retired codes.

Revision ID: 0005_plans
Revises: 0004_coverage_reports
Create Date: 2026-11-24
"""

from alembic import op

revision = "0005_plans"
down_revision = "0004_coverage_reports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        r"""
        -- A draft redrawing of the units below `unit_code`. `base` holds {code: version} of every
        -- current unit below it when the draft was opened: publish checks them (optimistic locking).
        CREATE TABLE plans (
            id           bigserial PRIMARY KEY,
            unit_code    varchar(18) NOT NULL REFERENCES units (code),
            title        text NOT NULL CHECK (title <> ''),
            author       text NOT NULL,
            status       text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published', 'abandoned')),
            created_at   timestamptz NOT NULL DEFAULT now(),
            published_at timestamptz,
            published_by text,
            abandoned_at timestamptz,
            base         jsonb NOT NULL DEFAULT '{}',
            CHECK ((status = 'published') = (published_at IS NOT NULL)),
            CHECK ((status = 'abandoned') = (abandoned_at IS NOT NULL))
        );
        CREATE INDEX plans_unit_idx ON plans (unit_code, status);

        -- The edits of a draft, replayed in order over the current units. `params` names the units
        -- and attributes (and, once applied, the codes the edit allocated); `geom` is the proposed
        -- polygon (replace, create) or the cutting line (split).
        CREATE TABLE plan_edits (
            id         bigserial PRIMARY KEY,
            plan_id    bigint NOT NULL REFERENCES plans (id),
            seq        integer NOT NULL,
            operation  text NOT NULL CHECK (operation IN ('replace', 'split', 'merge', 'move', 'create', 'retire')),
            params     jsonb NOT NULL DEFAULT '{}',
            geom       geometry(Geometry, 4490),
            author     text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (plan_id, seq)
        );

        -- What a publish did to each unit (for history and diffs): never rewritten.
        CREATE TABLE plan_changes (
            id          bigserial PRIMARY KEY,
            plan_id     bigint NOT NULL REFERENCES plans (id),
            code        varchar(18) NOT NULL REFERENCES units (code),
            change      text NOT NULL CHECK (change IN ('created', 'changed', 'retired')),
            old_version integer,
            new_version integer,
            CHECK ((change = 'created') = (old_version IS NULL)),
            CHECK ((change = 'retired') = (new_version IS NULL))
        );
        CREATE INDEX plan_changes_plan_idx ON plan_changes (plan_id);
        CREATE INDEX plan_changes_code_idx ON plan_changes (code);

        -- A retired code is never used again (domain.md §1): the record, and a trigger that refuses
        -- a new version of it, whoever writes (a plan, an import).
        CREATE TABLE retired_codes (
            code       varchar(18) PRIMARY KEY REFERENCES units (code),
            retired_at timestamptz NOT NULL,
            plan_id    bigint REFERENCES plans (id)
        );

        CREATE FUNCTION unit_versions_not_retired() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM retired_codes WHERE code = NEW.code) THEN
                RAISE EXCEPTION 'unit code % is retired and is never used again', NEW.code
                    USING ERRCODE = 'check_violation';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER unit_versions_not_retired BEFORE INSERT ON unit_versions
            FOR EACH ROW EXECUTE FUNCTION unit_versions_not_retired();

        CREATE FUNCTION plan_changes_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
        END $$;
        CREATE TRIGGER plan_changes_append_only BEFORE UPDATE OR DELETE ON plan_changes
            FOR EACH ROW EXECUTE FUNCTION plan_changes_append_only();
        CREATE TRIGGER retired_codes_append_only BEFORE UPDATE OR DELETE ON retired_codes
            FOR EACH ROW EXECUTE FUNCTION plan_changes_append_only();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER unit_versions_not_retired ON unit_versions;
        DROP FUNCTION unit_versions_not_retired();
        DROP TABLE retired_codes;
        DROP TABLE plan_changes;
        DROP FUNCTION plan_changes_append_only();
        DROP TABLE plan_edits;
        DROP TABLE plans;
        """
    )
