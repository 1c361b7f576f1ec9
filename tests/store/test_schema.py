"""The migrations are the one description of the schema: what the store's statements name exists."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from store.case_history import HISTORY_COLUMNS
from store.cases import CASE_COLUMNS
from store.patrols import PATROL_COLUMNS


def _columns(listing: str, alias: str | None) -> set[str]:
    """The column names a hand-written SELECT/INSERT list uses (`c.id`, `ST_X(c.geom) AS lon`: id, geom)."""
    if alias is None:
        return {name.strip() for name in listing.split(",")}
    return set(re.findall(rf"\b{alias}\.(\w+)", listing))


@pytest.mark.parametrize(
    ("table", "listing", "alias"),
    [("cases", CASE_COLUMNS, "c"), ("case_history", HISTORY_COLUMNS, None), ("patrols", PATROL_COLUMNS, "p")],
)
def test_the_stores_column_lists_name_migrated_columns(session, table, listing, alias):
    in_database = set(
        session.execute(
            text("SELECT column_name FROM information_schema.columns WHERE table_name = :t"), {"t": table}
        ).scalars()
    )
    named = _columns(listing, alias)
    assert len(named) >= 10, named  # the list was read, not an empty match
    assert named - in_database == set(), table


def test_geometry_columns_are_in_the_storage_srid(session):
    srids = session.execute(text("SELECT DISTINCT srid FROM geometry_columns")).scalars().all()
    assert srids == [3857, 4490]
    # The one exception: the tiles' simplified outlines (migration 0017), derived from unit_versions
    # and stored in the CRS tiles are cut in (Web Mercator), never read as data.
    mercator = session.execute(
        text("SELECT f_table_name FROM geometry_columns WHERE srid = 3857")
    ).scalars().all()
    assert mercator == ["unit_simplified"]


def test_the_database_takes_every_kind_of_coverage_finding(session):
    # A kind added to the analysis must be one a saved report can hold (not_patrolled was not).
    from geo.coverage import Kind

    check = session.execute(
        text(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conname = 'coverage_findings_kind_check'"
        )
    ).scalar_one()
    assert [k.value for k in Kind if f"'{k.value}'" not in check] == []
