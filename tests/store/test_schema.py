"""The mapped tables (store/models.py) describe exactly what the migrations create."""

from __future__ import annotations

from sqlalchemy import inspect

from store.models import Base


def test_models_match_the_migrated_schema(engine):
    inspector = inspect(engine)
    for table in Base.metadata.sorted_tables:
        in_database = {c["name"] for c in inspector.get_columns(table.name)}
        assert {c.name for c in table.columns} == in_database, table.name


def test_geometry_columns_are_in_the_storage_srid(session):
    from sqlalchemy import text

    srids = session.execute(text("SELECT DISTINCT srid FROM geometry_columns")).scalars().all()
    assert srids == [4490]


def test_the_database_takes_every_kind_of_coverage_finding(session):
    # A kind added to the analysis must be one a saved report can hold (not_patrolled was not).
    from sqlalchemy import text

    from geo.coverage import Kind

    check = session.execute(
        text(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conname = 'coverage_findings_kind_check'"
        )
    ).scalar_one()
    assert [k.value for k in Kind if f"'{k.value}'" not in check] == []
