"""A command's schema check (store.migrate.upgrade_if_behind): a current database costs one statement
and no Alembic; a database behind is still migrated."""

from __future__ import annotations

import os
import subprocess
import sys

from alembic import command
from sqlalchemy import create_engine

from store.migrate import alembic_config, bundled_heads, current_revision, head_revision, upgrade_if_behind
from tests.conftest import DB_PREFIX, TEST_SECRET, fresh_database

# Prints whether preparing the database (what every command does first) imported Alembic.
READY = (
    "import sys; from cli.common import ready_url; from geo.settings import get_settings; "
    "ready_url(get_settings()); print('alembic' in sys.modules)"
)


def test_bundled_heads_read_from_the_files_are_alembics():
    assert bundled_heads() == head_revision()


def test_a_current_database_is_not_migrated_and_one_behind_is(settings):
    url = fresh_database(settings, f"{DB_PREFIX}_schema_check")
    engine = create_engine(url)
    try:
        assert not upgrade_if_behind(engine)
        env = {**os.environ, "GRIDMAP_DATABASE_URL": url, "GRIDMAP_SECRET_KEY": TEST_SECRET}
        ready = subprocess.run([sys.executable, "-c", READY], env=env, capture_output=True, text=True)
        assert ready.returncode == 0, ready.stderr
        assert ready.stdout.strip() == "False"  # Alembic (~0.3 s) was not imported

        command.downgrade(alembic_config(url), "-1")
        with engine.connect() as connection:
            assert current_revision(connection) != head_revision()
        assert upgrade_if_behind(engine)
        with engine.connect() as connection:
            assert current_revision(connection) == head_revision()
    finally:
        engine.dispose()
