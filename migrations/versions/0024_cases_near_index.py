"""Cases' spatial index also keyed by time: GiST over (geom, the instant as a range), in place of (geom).

Intake answers every report with its suggested duplicates: open cases of its category within
50 m reported within a day of it (store.cases.DUPLICATES_SQL). With a GiST index on the point
alone and a btree on `reported_at`, the service's generic plan ANDs the two bitmaps: at 10 M cases
a year that read the whole day's entries of the btree (114,000 in the benchmark's month) for the
one case near the point, 3.9 ms a case, and intake's p99 rose to 60-90 ms. One GiST index over the
point and the time finds them in 0.36 ms (docs/benchmarks.md).

The time is indexed as `tstzrange(reported_at, reported_at, '[]')` (a range of one instant, GiST's
own range_ops), not as the bare column through btree_gist: an index whose second column is
`reported_at` itself is also a candidate for every `reported_at = ...` probe, and GiST's cost
estimate does not see that such a probe, without the first column, reads the whole index. The
redraw's locked read by (id, reported_at) chose it and took 140 s for 5,460 cases instead of a
fraction of a second. Only a query that names the range expression (the duplicates' search) uses
the time part of this index.

It serves the point-only searches as well as the old index did (its first column decides how it
splits), so it replaces it: intake still writes one spatial index entry per case.

Revision ID: 0024_cases_near_index
Revises: 0023_coverage_chain
Create Date: 2026-12-05
"""

from alembic import op

revision = "0024_cases_near_index"
down_revision = "0023_coverage_chain"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Build the (geom, instant) index on every month's partition, then drop the point-only one."""
    op.execute(
        "CREATE INDEX cases_near_idx ON cases USING gist (geom, tstzrange(reported_at, reported_at, '[]'))"
    )
    op.execute("DROP INDEX cases_geom_idx")


def downgrade() -> None:
    """Put the point-only index back."""
    op.execute("CREATE INDEX cases_geom_idx ON cases USING gist (geom)")
    op.execute("DROP INDEX cases_near_idx")
