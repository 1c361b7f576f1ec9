"""Migration 0017_cases_partitioned: the stored cases move into monthly partitions with their ids,
history and references, the id sequence goes on, and a downgrade gives the plain table back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import IntegrityError

from store.migrate import alembic_config
from tests.conftest import DB_PREFIX, fresh_database

BEFORE = "0016_province_levels"
CASES = [  # id, reported at (UTC), merged into
    (1, "2026-10-31 15:59:59+00", None),  # 31 October 23:59:59 in Beijing
    (2, "2026-10-31 16:00:00+00", None),  # 1 November 00:00 in Beijing
    (3, "2026-11-20 08:00:00+00", 2),
]
INSERT = """INSERT INTO cases (id, number, source, category, description, geom, input_crs,
    location_source, assign_status, assign_rule, assignment, tier, status, reported_at, merged_into)
    VALUES (:id, 'n-' || :id, 'hotline', '0101', 'x', ST_SetSRID(ST_MakePoint(114.9, 33.4), 4490),
            'cgcs2000', 'report', 'outside', 'none', '{}', 'county', 'reported', :at, :merged)"""


@pytest.fixture(scope="module")
def old_database(settings) -> Iterator[Engine]:
    """A database at the revision before, holding three cases over two months and their history."""
    url = fresh_database(settings, f"{DB_PREFIX}_migration")
    command.downgrade(alembic_config(url), BEFORE)
    engine = create_engine(url)
    with engine.begin() as conn:
        for case_id, at, merged in CASES:
            conn.execute(text(INSERT), {"id": case_id, "at": at, "merged": merged})
            conn.execute(
                text("INSERT INTO case_history (case_id, actor, action, to_status, tier) "
                     "VALUES (:id, 'test', 'report', 'reported', 'county')"), {"id": case_id},
            )  # fmt: skip
        conn.execute(text("SELECT setval('cases_id_seq', 3)"))
    yield engine
    engine.dispose()


def test_upgrade_keeps_cases_and_downgrade_gives_them_back(old_database):
    url = old_database.url.render_as_string(hide_password=False)
    command.upgrade(alembic_config(url), "0017_cases_partitioned")
    with old_database.begin() as conn:
        rows = conn.execute(
            text("SELECT id, tableoid::regclass::text AS part, merged_into FROM cases ORDER BY id")
        ).all()
        assert [tuple(r) for r in rows] == [
            (1, "cases_2026_10", None),
            (2, "cases_2026_11", None),
            (3, "cases_2026_11", 2),
        ]
        assert conn.execute(text("SELECT array_agg(id ORDER BY id) FROM case_ids")).scalar() == [1, 2, 3]
        assert conn.execute(text("SELECT count(*) FROM case_history")).scalar() == 3
        assert conn.execute(text("SELECT nextval('cases_id_seq')")).scalar() == 4
        assert conn.execute(text("SELECT relkind FROM pg_class WHERE relname = 'cases'")).scalar() == "p"
    with pytest.raises(IntegrityError), old_database.begin() as conn:  # history of no case
        conn.execute(text("INSERT INTO case_history (case_id, actor, action, to_status, tier) "
                          "VALUES (99, 'test', 'report', 'reported', 'county')"))  # fmt: skip
    command.downgrade(alembic_config(url), BEFORE)
    with old_database.begin() as conn:
        rows = conn.execute(text("SELECT id, merged_into FROM cases ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [(1, None), (2, None), (3, 2)]
        assert conn.execute(text("SELECT relkind FROM pg_class WHERE relname = 'cases'")).scalar() == "r"
        assert conn.execute(text("SELECT to_regclass('case_ids')")).scalar() is None
        assert conn.execute(text("SELECT count(*) FROM case_history")).scalar() == 3
    with pytest.raises(IntegrityError), old_database.begin() as conn:  # unique keys are back
        conn.execute(text(INSERT), {"id": 4, "at": "2026-11-21 00:00+00", "merged": None})
        conn.execute(
            text(INSERT.replace("'n-' || :id", "'n-4'")),
            {"id": 5, "at": "2026-11-21 00:00+00", "merged": None},
        )
    command.upgrade(alembic_config(url), "head")
