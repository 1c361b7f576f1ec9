"""The mapped tables (geo/db/models.py) describe exactly what the migrations create."""

from __future__ import annotations

from sqlalchemy import inspect

from geo.db.models import Base


def test_models_match_the_migrated_schema(engine):
    inspector = inspect(engine)
    for table in Base.metadata.sorted_tables:
        in_database = {c["name"] for c in inspector.get_columns(table.name)}
        assert {c.name for c in table.columns} == in_database, table.name


def test_geometry_columns_are_in_the_storage_srid(session):
    from sqlalchemy import text

    srids = session.execute(text("SELECT DISTINCT srid FROM geometry_columns")).scalars().all()
    assert srids == [4490]
