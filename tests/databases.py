"""The test run's databases: fresh copies of templates built once per run.

Migrating a new database takes seconds (every Alembic revision) and loading the demo county
tens of seconds; copying a database (`CREATE DATABASE … TEMPLATE`) takes a fraction of a second.
So a run builds two templates once, `{prefix}_tpl_migrated` (empty, migrated) and `{prefix}_tpl_demo`
(the demo county loaded and committed), and every test database is a copy of one of them. The
run's workers (pytest-xdist) share the templates: the first to need one builds it under a file
lock, the others wait and copy it. A template is rebuilt by the next run (its run id is kept in a
marker file beside the embedded cluster), so it always reflects the code under test.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from geo.settings import Settings
from services.imports import load_demo
from store.cluster import EmbeddedCluster
from store.engine import normalize_url
from store.migrate import upgrade

# GRIDMAP_TEST_DB_PREFIX keeps two runs on one server (two checkouts, say) out of each other's way;
# pytest-xdist's workers (scripts/test runs two) each get databases of their own the same way, and
# share the run's templates.
RUN_PREFIX = os.environ.get("GRIDMAP_TEST_DB_PREFIX", "gridmap_test")
DB_PREFIX = RUN_PREFIX + (
    f"_{os.environ['PYTEST_XDIST_WORKER']}" if os.environ.get("PYTEST_XDIST_WORKER") else ""
)
# The same for every worker of one run (xdist sets it), new for every run.
RUN_ID = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex
MIGRATED = f"{RUN_PREFIX}_tpl_migrated"
DEMO = f"{RUN_PREFIX}_tpl_demo"


@contextmanager
def _locked(settings: Settings, name: str) -> Iterator[Path]:
    """Hold the run's file lock `name` (beside the embedded cluster's data); yields the folder."""
    home = Path(settings.home)
    home.mkdir(parents=True, exist_ok=True)
    with open(home / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield home
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _server(settings: Settings) -> Engine:
    """An AUTOCOMMIT engine on the test server (GRIDMAP_TEST_DATABASE_URL's, else the embedded
    cluster, started if needed): its user creates and drops databases."""
    given = os.environ.get("GRIDMAP_TEST_DATABASE_URL")
    if given:
        return create_engine(normalize_url(given), isolation_level="AUTOCOMMIT")
    cluster = EmbeddedCluster(settings)
    with _locked(settings, "test-start"):  # xdist workers: one initdb/start, not two at once
        cluster.start(progress=lambda m: None)
    return create_engine(cluster.url(), isolation_level="AUTOCOMMIT")


def _copy(settings: Settings, name: str, template: str | None) -> str:
    """Database `name` made anew (a copy of `template`, or empty); its URL."""
    server = _server(settings)
    with server.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    url = server.url.set(database=name).render_as_string(hide_password=False)
    server.dispose()
    return url


def _copy_template(settings: Settings, name: str, template: str) -> str:
    """Database `name` made anew as a copy of `template`; its URL."""
    with _locked(settings, template):  # PostgreSQL copies a template nobody is connected to
        return _copy(settings, name, template)


def _template(settings: Settings, name: str, build: Callable[[str], None]) -> str:
    """Template `name` of this run: built by `build(name)` by the first worker to ask, once."""
    with _locked(settings, name) as home:
        marker = home / f"{name}.run"
        if not (marker.is_file() and marker.read_text() == RUN_ID):
            marker.unlink(missing_ok=True)
            build(name)
            marker.write_text(RUN_ID)
    return name


def _migrated_template(settings: Settings) -> str:
    """The run's empty, migrated template."""
    return _template(settings, MIGRATED, lambda name: upgrade(_copy(settings, name, None)))


def _demo_template(settings: Settings) -> str:
    """The run's template holding the demo county."""

    def build(name: str) -> None:
        engine = create_engine(_copy_template(settings, name, _migrated_template(settings)))
        with Session(engine) as session, session.begin():
            load_demo(session, settings, progress=lambda m: None)
        engine.dispose()  # a template has no open connections

    return _template(settings, DEMO, build)


def fresh_database(settings: Settings, name: str) -> str:
    """A new, migrated, empty database `name` on the test server; its URL."""
    return _copy_template(settings, name, _migrated_template(settings))


def demo_database(settings: Settings, name: str) -> str:
    """A new database `name` holding the demo county, committed; its URL."""
    return _copy_template(settings, name, _demo_template(settings))
