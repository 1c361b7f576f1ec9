"""Engines and sessions: which database the service talks to, and how."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.orm import Session, sessionmaker

from geo.settings import Settings


class DatabaseError(RuntimeError):
    """The database cannot be used; the message says what to do."""


def resolve_database_url(settings: Settings, *, progress: Callable[[str], None] = print) -> str:
    """The configured URL, or the embedded cluster's (started if needed) when none is set."""
    if settings.database_url:
        return normalize_url(settings.database_url)
    from store.cluster import EmbeddedCluster  # only the embedded default needs the cluster

    return EmbeddedCluster(settings).start(progress=progress)


def normalize_url(url: str) -> str:
    """Use the psycopg 3 driver for plain postgres:// or postgresql:// URLs.

    A libpq multi-host URL (`postgresql://u:p@h1:5432,h2:5432/db?target_session_attrs=read-write`,
    what Patroni deployments hand out) becomes SQLAlchemy's spelling of it, one `host=` per host.
    """
    parsed = make_url(_hosts_in_query(url))
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if not parsed.drivername.startswith("postgresql"):
        raise DatabaseError(f"GRIDMAP_DATABASE_URL must point to PostgreSQL/PostGIS, not {parsed.drivername}")
    return parsed.render_as_string(hide_password=False)


def _hosts_in_query(url: str) -> str:
    """libpq's comma-separated hosts in the authority moved to SQLAlchemy's repeated `host=`."""
    parts = urlsplit(url)
    if "," not in parts.netloc:
        return url
    userinfo, at, hosts = parts.netloc.rpartition("@")
    query = [*parse_qsl(parts.query, keep_blank_values=True), *(("host", h) for h in hosts.split(","))]
    return urlunsplit((parts.scheme, f"{userinfo}{at}", parts.path, urlencode(query), parts.fragment))


def libpq_conninfo(engine: Engine) -> str:
    """The libpq connection string of an engine's URL (multi-host included), for psycopg directly."""
    _, params = engine.dialect.create_connect_args(engine.url)
    return make_conninfo(**{k: v for k, v in params.items() if isinstance(v, str | int)})


# For the API: its few statements are prepared on first use and planned once per connection.
# PostGIS's selectivity estimates make planning a point lookup cost ~2 ms, six times running it.
# No JIT: a generic plan over a year of monthly partitions is estimated costly enough to compile,
# and intake's read-back of a batch (a few ms of work) spent 27 s in LLVM at 10 M cases.
SERVICE_CONNECT_ARGS = {"prepare_threshold": 1, "options": "-c plan_cache_mode=force_generic_plan -c jit=off"}


@lru_cache(maxsize=8)
def engine_for(url: str, *, service: bool = False, wait_s: float = 0.0) -> Engine:
    """One pooled engine per URL (and use) for the life of the process; its new connections wait
    up to `wait_s` for a server that accepts them (store.connect_wait)."""
    from store.connect_wait import wait_for_a_server  # it imports nothing of this module's

    connect_args = SERVICE_CONNECT_ARGS if service else {}
    engine = create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True, connect_args=connect_args)
    event.listen(engine, "handle_error", _standby_is_a_lost_connection)
    wait_for_a_server(engine, wait_s)
    return engine


# After a failover a pooled connection may lead to the old primary, now a standby (or shutting
# down): it still answers the pool's ping, so every write on it would fail. Such errors count as
# a lost connection, which makes SQLAlchemy drop the connection (and the pool's older ones).
_LOST = (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.AdminShutdown, psycopg.errors.CannotConnectNow)


def _standby_is_a_lost_connection(context: ExceptionContext) -> None:
    if isinstance(context.original_exception, _LOST):
        context.is_disconnect = True


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)
