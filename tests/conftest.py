"""Test fixtures: a real PostGIS database for the run, and a rolled-back transaction per test.

The database is GRIDMAP_TEST_DATABASE_URL when set, else a fresh `gridmap_test` database in the
project's embedded cluster (started if needed). If PostGIS cannot be had, the run fails loudly:
these tests never skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from api.app import create_app
from api.deps import get_session
from geo.db.cluster import EmbeddedCluster
from geo.db.engine import normalize_url
from geo.db.migrate import upgrade
from geo.demo import load_demo
from geo.settings import Settings

TEST_DATABASE = "gridmap_test"


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Default settings, independent of the caller's environment."""
    return Settings(database_url=None)


@pytest.fixture(scope="session")
def database_url(settings: Settings) -> str:
    """A freshly migrated test database."""
    given = os.environ.get("GRIDMAP_TEST_DATABASE_URL")
    if given:
        url = normalize_url(given)
    else:
        cluster = EmbeddedCluster(settings)
        cluster.start(progress=lambda m: None)
        cluster.drop_database(TEST_DATABASE)
        cluster.create_database(TEST_DATABASE)
        url = cluster.url().rsplit("/", 1)[0] + "/" + TEST_DATABASE
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """One engine for the run."""
    engine = create_engine(database_url, pool_size=5)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def demo_county(engine: Engine, settings: Settings) -> None:
    """The demo county, loaded and committed once for every test that reads it."""
    with Session(engine) as session, session.begin():
        load_demo(session, settings, progress=lambda m: None)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test, whatever it committed."""
    with engine.connect() as connection:
        outer = connection.begin()
        session = Session(bind=connection, join_transaction_mode="create_savepoint")
        try:
            yield session
        finally:
            session.close()
            outer.rollback()


@pytest.fixture
def client(session: Session, settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """An API client whose requests all use the test's rolled-back session."""
    app = create_app(settings, engine=engine)
    app.dependency_overrides[get_session] = lambda: session
    with TestClient(app) as client:
        yield client
