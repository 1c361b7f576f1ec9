"""The cases' daily roll-up (issue 19 §2: /stats and the dashboard at 10 M cases).

`case_rollup` holds, per unit key and Beijing day, every additive figure /stats and the
dashboard show: cases received and closed (with their handling time), reopened, stages done and
done on time, the tier holding each closed case, the revisits' ratings. Every figure is counted
for the case's *current* unit and grid, as the direct queries count them, so a case that changes
unit or grid (reassignment, redraw, escalation, transfer) moves all of its counts, past days
included. Kept by statement-level triggers with transition tables, in the writer's transaction
(a batch of intakes is aggregated at once), and backfilled here from the stored rows.

Keys (`case_rollup_keys`): '' = every case; each prefix of the case's unit code and grid code
at a level's length (2 province … 18 micro-grid), i.e. every unit whose `LIKE code%` test the
case passes; '~' = a case with neither (outside every unit: /stats counts it for any unit of
county level or above). Rows are spread over SHARDS shards (the writer's backend pid) so that
concurrent writers rarely wait for each other on today's rows; readers sum the shards.

Revision ID: 0019_case_rollup
Revises: 0018_simplified_units
Create Date: 2026-12-05
"""

from alembic import op

revision = "0019_case_rollup"
down_revision = "0018_simplified_units"
branch_labels = None
depends_on = None

# The vocabulary when this revision was written (cases.categories.STAGES, cases.lifecycle.Tier,
# Rating): store.case_rollup reads these columns; tests check both agree.
STAGES = ("verify", "file", "dispatch", "accept", "handle", "check", "close", "revisit")
TIERS = ("grid", "community", "street", "county", "department")
RATINGS = ("satisfied", "basically_satisfied", "unsatisfied")
CODE_LENGTHS = (2, 4, 6, 9, 12, 15, 18)
SHARDS = 8
LOCK = 0x726F6C6C  # "roll": with the shard, serialises the writers of one shard (no deadlock)

# Each figure column and how a history entry `h` adds to it (a case row adds received/closed).
HISTORY_FIGURES = {
    "reopened": "h.action = 'reopen'",
    **{f"done_{s}": f"h.on_time IS NOT NULL AND h.stage = '{s}'" for s in STAGES},
    **{f"on_time_{s}": f"h.on_time AND h.stage = '{s}'" for s in STAGES},
    **{f"tier_{t}": f"h.to_status = 'closed' AND h.tier = '{t}'" for t in TIERS},
    **{f"rating_{r}": f"h.action = 'revisited' AND h.details->>'rating' = '{r}'" for r in RATINGS},
}
CASE_FIGURES = ("received", "closed", "closed_us")
FIGURES = (*CASE_FIGURES, *HISTORY_FIGURES)
# History entries that count for something (the others add nothing: skipped).
COUNTS = "(h.action IN ('reopen', 'revisited') OR h.on_time IS NOT NULL OR h.to_status = 'closed')"
DAY = "(({0}) AT TIME ZONE 'Asia/Shanghai')::date"
# New entries find their case by id (an index probe a partition), not by a hash of every case.
PROBE = "CROSS JOIN LATERAL (SELECT c.unit_code, c.grid_code FROM cases c WHERE c.id = h.case_id LIMIT 1) c"


def case_events(rel: str, sign: int) -> str:
    """Rows (unit_code, grid_code, day, figures…) a case row of `rel` adds: its report and its close."""
    zeros = ", ".join(f"0 AS {f}" for f in HISTORY_FIGURES)
    return f"""SELECT c.unit_code, c.grid_code, e.day, {sign} * e.received AS received,
                      {sign} * e.closed AS closed, {sign} * e.closed_us AS closed_us, {zeros}
               FROM {rel} c CROSS JOIN LATERAL (VALUES
                   ({DAY.format("c.reported_at")}, 1, 0, 0::bigint),
                   ({DAY.format("c.closed_at")}, 0, 1,
                    round(extract(epoch FROM c.closed_at - c.reported_at) * 1000000)::bigint)
               ) e(day, received, closed, closed_us)
               WHERE e.day IS NOT NULL"""


def history_events(history: str, cases: str, sign: int, probe: bool = False, by_case: bool = False) -> str:
    """Rows a history entry of `history` adds, at the unit and grid of its case in `cases` (found
    by id, `probe`, for a few entries; or the entries of each case of `cases`, `by_case`)."""
    figures = ", ".join(
        f"{sign} * coalesce({cond}, false)::int AS {f}" for f, cond in HISTORY_FIGURES.items()
    )
    return f"""SELECT c.unit_code, c.grid_code, {DAY.format("h.at")} AS day,
                      0 AS received, 0 AS closed, 0::bigint AS closed_us, {figures}
               FROM {_joined(history, cases, probe, by_case)} WHERE {COUNTS}"""


def _joined(history: str, cases: str, probe: bool, by_case: bool) -> str:
    if by_case:  # the history of a few moved cases: by its index, not a hash of all history
        return f"{cases} c CROSS JOIN LATERAL (SELECT * FROM {history} h WHERE h.case_id = c.id) h"
    return f"{history} h {PROBE if probe else f'JOIN {cases} c ON c.id = h.case_id'}"


def apply(events: str, shard: str) -> str:
    """Add `events` to the roll-up: summed per unit, grid and day first (a batch, a county), then
    per key (each pair's keys made once: a rebuild has millions of rows and thousands of pairs)."""
    sums = ", ".join(f"sum({f}) AS {f}" for f in FIGURES)
    adds = ", ".join(f"{f} = r.{f} + EXCLUDED.{f}" for f in FIGURES)
    return f"""WITH e AS (SELECT coalesce(unit_code, '') AS u, coalesce(grid_code, '') AS g, day, {sums}
                   FROM ({events}) ev GROUP BY 1, 2, 3),
             k AS (SELECT p.u, p.g, unnest(case_rollup_keys(nullif(p.u, ''), nullif(p.g, ''))) AS unit
                   FROM (SELECT DISTINCT u, g FROM e) p)
        INSERT INTO case_rollup AS r (unit, day, shard, {", ".join(FIGURES)})
        SELECT k.unit, e.day, {shard}, {sums}
        FROM e JOIN k ON k.u = e.u AND k.g = e.g
        GROUP BY k.unit, e.day ORDER BY k.unit, e.day
        ON CONFLICT (unit, day, shard) DO UPDATE SET {adds}"""


SHARD = f"(pg_backend_pid() % {SHARDS})"
TAKE_LOCK = f"PERFORM pg_advisory_xact_lock({LOCK}, {SHARD});"


def trigger_function(name: str, body: str, guard: str = "SELECT 1") -> str:
    """A statement-level trigger function running `body` (SQL statements) under the shard's lock,
    when `guard` finds a row (a statement that changes no figure plans and locks nothing: the
    transition tables make each run's statements planned anew)."""
    return f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS ({guard}) THEN
                {TAKE_LOCK}
                {body};
            END IF;
            RETURN NULL;
        END $$"""


# What moved: a case whose unit, grid, report or close time changed (other updates add nothing),
# its old and new values read once from the transition tables (whole rows: a redraw's spill to disk).
MOVED = """SELECT o.id, o.unit_code AS o_unit, o.grid_code AS o_grid, o.reported_at AS o_reported,
        o.closed_at AS o_closed, n.unit_code AS n_unit, n.grid_code AS n_grid, n.reported_at AS n_reported,
        n.closed_at AS n_closed
    FROM old_cases o JOIN new_cases n ON n.id = o.id
    WHERE (o.unit_code, o.grid_code, o.reported_at, o.closed_at)
          IS DISTINCT FROM (n.unit_code, n.grid_code, n.reported_at, n.closed_at)"""
SIDE = "(SELECT id, {0}_unit AS unit_code, {0}_grid AS grid_code, {0}_reported AS reported_at, " \
       "{0}_closed AS closed_at FROM d{1})"  # fmt: skip
REKEYED = " WHERE (o_unit, o_grid) IS DISTINCT FROM (n_unit, n_grid)"  # all its history moves too


def update_body() -> str:
    """A case's move: its old rows out, its new rows in (history too when its unit or grid changed)."""
    parts = [
        case_events(SIDE.format("o", ""), -1),
        case_events(SIDE.format("n", ""), 1),
        history_events("case_history", SIDE.format("o", REKEYED), -1, by_case=True),
        history_events("case_history", SIDE.format("n", REKEYED), 1, by_case=True),
    ]
    return apply(f"WITH d AS MATERIALIZED ({MOVED}) " + " UNION ALL ".join(parts), SHARD)


# The rebuild goes a month of reports at a time: those cases, their closes and their history. In
# one statement, 10 M cases and their history were one aggregate of ~100 M (key, day) rows that
# spilled tens of GB to disk; a month's slice is a twelfth, and its temporary files are freed
# before the next. Slices add up (ON CONFLICT adds), so a close or an entry in a later month lands
# on the day that a later slice may also write.
SLICE = "(SELECT * FROM cases WHERE reported_at >= slice_from AND reported_at < slice_to)"
REBUILD = f"""CREATE FUNCTION case_rollup_rebuild() RETURNS void LANGUAGE plpgsql AS $$
    DECLARE
        slice_from timestamptz;
        slice_to timestamptz;
        last_report timestamptz;
    BEGIN
        PERFORM pg_advisory_xact_lock({LOCK}, s) FROM generate_series(0, {SHARDS - 1}) s;
        TRUNCATE case_rollup;
        SELECT date_trunc('month', min(reported_at)), max(reported_at) INTO slice_from, last_report FROM cases;
        WHILE slice_from <= last_report LOOP
            slice_to := slice_from + interval '1 month';
            {apply(case_events(SLICE, 1) + " UNION ALL " + history_events("case_history", SLICE, 1), "0")};
            slice_from := slice_to;
        END LOOP;
    END $$"""

PREFIXES = ", ".join(f"{c}, " + ", ".join(f"left({c}, {n})" for n in CODE_LENGTHS) for c in ("u", "g"))
KEYS = f"""CREATE FUNCTION case_rollup_keys(u text, g text) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN u IS NULL AND g IS NULL THEN ARRAY['', '~']
        ELSE ARRAY(SELECT DISTINCT x FROM unnest(ARRAY['', {PREFIXES}]) x WHERE x IS NOT NULL) END $$"""


def table() -> str:
    """The roll-up table: one row per key, day and shard, one column per figure."""
    columns = ",\n".join(
        f"{f} {'bigint' if f == 'closed_us' else 'integer'} NOT NULL DEFAULT 0" for f in FIGURES
    )
    return f"""CREATE TABLE case_rollup (
        unit  text NOT NULL,
        day   date NOT NULL,
        shard smallint NOT NULL DEFAULT 0,
        {columns},
        PRIMARY KEY (unit, day, shard))"""


TRIGGERS = {
    "case_rollup_cases_insert": ("cases", "INSERT", "NEW TABLE AS new_cases",
                                 apply(case_events("new_cases", 1), SHARD)),
    "case_rollup_cases_update": ("cases", "UPDATE", "OLD TABLE AS old_cases NEW TABLE AS new_cases",
                                 update_body(), MOVED),
    "case_rollup_cases_delete": ("cases", "DELETE", "OLD TABLE AS old_cases",
                                 apply(case_events("old_cases", -1) + " UNION ALL "
                                       + history_events("case_history", "old_cases", -1), SHARD)),
    "case_rollup_history_insert": ("case_history", "INSERT", "NEW TABLE AS new_history",
                                   apply(history_events("new_history", "cases", 1, probe=True), SHARD),
                                   f"SELECT 1 FROM new_history h WHERE {COUNTS}"),
}  # fmt: skip


def upgrade() -> None:
    op.execute(table())
    op.execute(KEYS)
    for name, (on, event, referencing, body, *guard) in TRIGGERS.items():
        op.execute(trigger_function(name, body, *guard))
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {on} REFERENCING {referencing} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )
    op.execute(REBUILD)
    # A truncated table (a reset): the roll-up is made again from what is left.
    op.execute("""CREATE FUNCTION case_rollup_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM case_rollup_rebuild(); RETURN NULL; END $$""")
    for on in ("cases", "case_history"):
        op.execute(f"CREATE TRIGGER case_rollup_{on}_truncate AFTER TRUNCATE ON {on} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION case_rollup_truncated()")  # fmt: skip
    # Periods cut inside a day are read from the cases themselves: by report and close time.
    op.execute("CREATE INDEX cases_reported_idx ON cases (reported_at)")
    op.execute("CREATE INDEX cases_closed_idx ON cases (closed_at) WHERE closed_at IS NOT NULL")
    op.execute("SELECT case_rollup_rebuild()")  # the backfill


def downgrade() -> None:
    op.execute("DROP INDEX cases_closed_idx")
    op.execute("DROP INDEX cases_reported_idx")
    for on in ("cases", "case_history"):
        op.execute(f"DROP TRIGGER case_rollup_{on}_truncate ON {on}")
    op.execute("DROP FUNCTION case_rollup_truncated()")
    for name, (on, *_rest) in TRIGGERS.items():
        op.execute(f"DROP TRIGGER {name} ON {on}")
        op.execute(f"DROP FUNCTION {name}()")
    op.execute("DROP FUNCTION case_rollup_rebuild()")
    op.execute("DROP FUNCTION case_rollup_keys(text, text)")
    op.execute("DROP TABLE case_rollup")
