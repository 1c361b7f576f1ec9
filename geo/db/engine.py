"""Engines and sessions: which database the service talks to, and how."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from geo.settings import Settings


class DatabaseError(RuntimeError):
    """The database cannot be used; the message says what to do."""


def resolve_database_url(settings: Settings, *, progress: Callable[[str], None] = print) -> str:
    """The configured URL, or the embedded cluster's (started if needed) when none is set."""
    if settings.database_url:
        return normalize_url(settings.database_url)
    from geo.db.cluster import EmbeddedCluster  # only the embedded default needs the cluster

    return EmbeddedCluster(settings).start(progress=progress)


def normalize_url(url: str) -> str:
    """Use the psycopg 3 driver for plain postgres:// or postgresql:// URLs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if not parsed.drivername.startswith("postgresql"):
        raise DatabaseError(f"GRIDMAP_DATABASE_URL must point to PostgreSQL/PostGIS, not {parsed.drivername}")
    return parsed.render_as_string(hide_password=False)


# For the API: its few statements are prepared on first use and planned once per connection.
# PostGIS's selectivity estimates make planning a point lookup cost ~2 ms, six times running it.
SERVICE_CONNECT_ARGS = {"prepare_threshold": 1, "options": "-c plan_cache_mode=force_generic_plan"}


@lru_cache(maxsize=8)
def engine_for(url: str, *, service: bool = False) -> Engine:
    """One pooled engine per URL (and use) for the life of the process."""
    connect_args = SERVICE_CONNECT_ARGS if service else {}
    return create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True, connect_args=connect_args)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)
