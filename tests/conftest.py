"""Test fixtures: a real PostGIS database for the run, and a rolled-back transaction per test.

The server is GRIDMAP_TEST_DATABASE_URL's when set (its user must be able to create databases),
else the project's embedded cluster (started if needed). Two databases per worker: an empty one, and
one holding the demo county; both, and every other test database, are copies of templates the run
builds once (tests/databases.py). If PostGIS cannot be had, the run fails loudly: these tests
never skip.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

import hypothesis
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from access.roles import Role, User
from api.access import TokenCache
from api.app import create_app
from geo.settings import Settings
from services.imports import import_units
from tests import factories
from tests.databases import DB_PREFIX, demo_database, fresh_database
from tests.live import TEST_SECRET  # one value for in-process and served apps

TEST_DATABASE = DB_PREFIX
DEMO_DATABASE = f"{DB_PREFIX}_demo"


# Hypothesis checks behaviour, not speed: no per-example deadline (a busy machine's slow example is
# not a failure; speed is the benchmarks' job), and too_slow generation is not an error either.
hypothesis.settings.register_profile(
    "suite", deadline=None, suppress_health_check=[hypothesis.HealthCheck.too_slow]
)
hypothesis.settings.load_profile("suite")

COUNTY_FROM = datetime(2024, 1, 1, tzinfo=UTC)  # when the test county's units begin

# The user test clients act as unless a test signs in for real: an admin over every unit.
TEST_ADMIN = User(id=0, username="test-admin", role=Role.ADMIN, unit_code="")
TEST_TOKEN = "test-admin-token"


class AdminToken(TokenCache):
    """A test app's token cache: TEST_TOKEN is TEST_ADMIN's; any other token is looked up as usual.

    Through the cache rather than FastAPI's dependency_overrides: the JSON intake route
    (api.routes.cases.JsonReports) identifies the caller without FastAPI's dependencies.
    """

    def __init__(self) -> None:
        super().__init__(ttl_s=0)  # remembers no other token

    def get(self, kind: str, token: str) -> User | None:
        """TEST_ADMIN for TEST_TOKEN, else unknown."""
        return TEST_ADMIN if token == TEST_TOKEN else None


def act_as_admin(app: FastAPI) -> dict[str, str]:
    """Make TEST_TOKEN TEST_ADMIN's in `app`; the headers a client sends to act as TEST_ADMIN."""
    app.state.token_cache = AdminToken()
    return {"Authorization": f"Bearer {TEST_TOKEN}"}


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Default settings, independent of the caller's environment."""
    # Limits are counted in the database per client address, and every in-process test client is
    # one address ("testclient"): tests of the limits set their own.
    return Settings(
        database_url=None, secret_key=TEST_SECRET, background_jobs=False, login_per_minute=10_000,
        public_intake_per_minute=10_000, open311_public_reads_per_minute=10_000,
        database_wait_s=1,  # a test of a lost database waits one second, not ten, before its 503
    )  # fmt: skip


def county_database(settings: Settings, name: str, features: list[dict] | None = None) -> str:
    """A new, migrated database `name` holding the test county (or `features`), committed: for servers
    and writers in other connections, which cannot share a test's rolled-back transaction."""
    url = fresh_database(settings, name)
    engine = create_engine(url)
    with tempfile.TemporaryDirectory() as folder, Session(engine) as session, session.begin():
        path = factories.write_geojson(Path(folder) / "county.geojson", features or factories.hierarchy())
        import_units(session, path, valid_from=COUNTY_FROM, settings=settings)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def database_url(settings: Settings) -> str:
    """An empty, migrated test database: each test brings the units it needs."""
    return fresh_database(settings, TEST_DATABASE)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """One engine for the run."""
    engine = create_engine(database_url, pool_size=5)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def demo_engine(settings: Settings) -> Iterator[Engine]:
    """A database of its own holding the demo county, loaded and committed once per run."""
    engine = create_engine(demo_database(settings, DEMO_DATABASE), pool_size=5)
    yield engine
    engine.dispose()


def _rolled_back_session(engine: Engine) -> Iterator[Session]:
    with engine.connect() as connection:
        outer = connection.begin()
        session = Session(bind=connection, join_transaction_mode="create_savepoint")
        try:
            yield session
        finally:
            session.close()
            outer.rollback()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test, whatever it committed."""
    yield from _rolled_back_session(engine)


@pytest.fixture
def demo_session(demo_engine: Engine) -> Iterator[Session]:
    """The same, on the demo county's database."""
    yield from _rolled_back_session(demo_engine)


def use_session(app: FastAPI, session: Session) -> None:
    """Every session the app opens (requests, access checks, lookups) is the test's rolled-back one."""
    app.state.sessions = app.state.read_sessions = lambda: nullcontext(session)


@pytest.fixture
def county(session: Session, settings: Settings, tmp_path) -> None:
    """The small test county of tests/factories.py (2×2 urban grids), in the test's session."""
    path = factories.write_geojson(tmp_path / "county.geojson", factories.hierarchy())
    import_units(session, path, valid_from=COUNTY_FROM, settings=settings)


def _client(session: Session, settings: Settings, engine: Engine) -> Iterator[TestClient]:
    app = create_app(settings, engine=engine)
    use_session(app, session)
    with TestClient(app, base_url="https://testserver", headers=act_as_admin(app)) as client:
        yield client


@pytest.fixture
def client(session: Session, settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """An API client whose requests all use the test's rolled-back session."""
    yield from _client(session, settings, engine)


@pytest.fixture
def demo_client(demo_session: Session, settings: Settings, demo_engine: Engine) -> Iterator[TestClient]:
    """An API client on the demo county."""
    yield from _client(demo_session, settings, demo_engine)
