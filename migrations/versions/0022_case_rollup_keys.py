"""The roll-up keyed down to the community, its triggers' joins hashed (issue 19 §2: a redraw).

Measured on 1 M cases (EXPLAIN ANALYZE of the triggers' statements, docs/cases.md): a redraw's
reassignment spent its time in the roll-up's update trigger, and not on the roll-up's rows: the
redraw's UPDATE runs with hash and merge joins off (store.case_redraw probes one partition per
case), and the trigger's statements, planned inside it, joined the old and new rows of the
transition tables, and the moved rows to their keys, by nested loops: n² comparisons (477 moved
cases: 0.2 M and 5.9 M rows compared, 0.73 s; 70,336: hours). Every trigger function now plans
with hash and merge joins allowed, whatever its caller set.

And the keys stop at the community: '' and '~', and each prefix of the case's unit and grid code
at the lengths 2, 4, 6, 9, 12 (province … community). A redraw moves cases between grids, mostly
of one community: such a move changes no key, so the update trigger skips it (the case is not
"moved" for the roll-up) and touches no row. A grid's or micro-grid's figures are read from its
few cases and their history (store.case_direct). A move that does change keys (another
community, street, a reassignment) moves only the rows of the keys that differ: the keys both
sides share add up to zero and are left alone. The table is rebuilt (case_rollup_rebuild, a month
of reports at a time, after a TRUNCATE that frees the old rows' space at once).

Revision ID: 0022_case_rollup_keys
Revises: 0021_import_digests
Create Date: 2026-12-05
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0022_case_rollup_keys"
down_revision = "0021_import_digests"
branch_labels = None
depends_on = None


def _revision_0019():
    """Migration 0019's SQL builders (its figures, events, lock and trigger shape), unchanged."""
    path = Path(__file__).with_name("0019_case_rollup.py")
    spec = importlib.util.spec_from_file_location("gridmap_migration_0019", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


R = _revision_0019()
KEY_LENGTHS = (2, 4, 6, 9, 12)  # province, city, county, street, community
FINEST = KEY_LENGTHS[-1]
PREFIXES = ", ".join(f"left({c}, {n})" for c in ("u", "g") for n in KEY_LENGTHS)
KEYS = f"""CREATE OR REPLACE FUNCTION case_rollup_keys(u text, g text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN u IS NULL AND g IS NULL THEN ARRAY['', '~']
        ELSE ARRAY(SELECT DISTINCT x FROM unnest(ARRAY['', {PREFIXES}]) x WHERE x IS NOT NULL) END $$"""

# A case moved for the roll-up: its keys (the community prefixes of its unit and grid: equal
# prefixes of the longest length make every shorter one equal) or its report or close time changed.
MOVED = f"""SELECT o.id, o.unit_code AS o_unit, o.grid_code AS o_grid, o.reported_at AS o_reported,
        o.closed_at AS o_closed, n.unit_code AS n_unit, n.grid_code AS n_grid, n.reported_at AS n_reported,
        n.closed_at AS n_closed
    FROM old_cases o JOIN new_cases n ON n.id = o.id
    WHERE (left(o.unit_code, {FINEST}), left(o.grid_code, {FINEST}), o.reported_at, o.closed_at)
          IS DISTINCT FROM (left(n.unit_code, {FINEST}), left(n.grid_code, {FINEST}), n.reported_at, n.closed_at)"""
REKEYED = (f" WHERE (left(o_unit, {FINEST}), left(o_grid, {FINEST}))"
           f" IS DISTINCT FROM (left(n_unit, {FINEST}), left(n_grid, {FINEST}))")  # fmt: skip


def apply(events: str, shard: str) -> str:
    """0019's `apply`, leaving out the (key, day) sums that are all zero: the keys a moved case
    keeps (its old rows out, its new rows in, on the same key) are not touched."""
    sql = R.apply(events, shard)
    moved = " OR ".join(f"sum({f}) <> 0" for f in R.FIGURES)
    return sql.replace("GROUP BY k.unit, e.day ORDER BY", f"GROUP BY k.unit, e.day HAVING {moved} ORDER BY")


# The re-keyed cases' history, each case's entries by the history's (case_id, id) index: pulled up
# into a join, the subquery was planned as a hash of all history (the planner cannot count the
# moved rows: 24.7 M estimated for 15,265), 2.3 s a side at 1 M cases; OFFSET 0 keeps it a probe.
BY_CASE = "WHERE h.case_id = c.id) h"
PROBED = "WHERE h.case_id = c.id OFFSET 0) h"


def update_body() -> str:
    """A case's move: its old rows out, its new rows in (history too when its keys changed)."""
    parts = [
        R.case_events(R.SIDE.format("o", ""), -1),
        R.case_events(R.SIDE.format("n", ""), 1),
        R.history_events("case_history", R.SIDE.format("o", REKEYED), -1, by_case=True),
        R.history_events("case_history", R.SIDE.format("n", REKEYED), 1, by_case=True),
    ]
    body = apply(f"WITH d AS MATERIALIZED ({MOVED}) " + " UNION ALL ".join(parts), R.SHARD)
    assert body.count(BY_CASE) == 2  # 0019's builder, as this revision read it
    return body.replace(BY_CASE, PROBED)


TRIGGER_FUNCTIONS = ("case_rollup_cases_insert", "case_rollup_cases_update", "case_rollup_cases_delete",
                     "case_rollup_history_insert")  # fmt: skip
# The planner settings a caller may have turned off (store.case_redraw does, for its UPDATE).
JOINS = "SET enable_hashjoin = on SET enable_mergejoin = on"


def _replace_update(body: str, guard: str) -> None:
    op.execute(R.trigger_function("case_rollup_cases_update", body, guard).replace(
        "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))  # fmt: skip


def upgrade() -> None:
    op.execute(KEYS)
    _replace_update(update_body(), MOVED)
    for name in TRIGGER_FUNCTIONS:
        op.execute(f"ALTER FUNCTION {name}() {JOINS}")
    op.execute("SELECT case_rollup_rebuild()")  # TRUNCATE (the old rows' space freed), then month by month


def downgrade() -> None:
    for name in TRIGGER_FUNCTIONS:
        op.execute(f"ALTER FUNCTION {name}() RESET ALL")
    op.execute(R.KEYS.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    _replace_update(R.update_body(), R.MOVED)
    op.execute("SELECT case_rollup_rebuild()")
