"""Reads on standbys, never from one whose data is older than a bound.

A Patroni cluster's standbys can carry the map tiles, lists, statistics, dashboards and exports
while the primary takes intake. libpq's `target_session_attrs=prefer-standby` finds a standby but
knows nothing of how far behind it is, so every connection of the read engine is checked when it
is made and every time the pool hands it out: a standby whose data may be older than
GRIDMAP_READ_MAX_LAG_S is dropped, and the read goes to another standby or to the primary.

How old a standby's data may be (`staleness_s`): nothing when it has replayed all the WAL it
received from a primary it still streams from; otherwise the age of the last transaction it
replayed. That age alone would call an idle cluster's standbys stale (with no writes, the last
replayed transaction grows old while nothing is missing), hence the first rule. A standby cut
off from its primary has no measure: it is read from only when no primary answers at all (etcd
lost, the primary demoted): then it holds everything that could be written, and reads go on.
"""

from __future__ import annotations

import math
import random
import re
import time
from dataclasses import dataclass
from functools import lru_cache

import psycopg
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Select, TextClause

from geo.settings import Settings
from store.engine import SERVICE_CONNECT_ARGS, normalize_url
from store.wal_positions import lsn_number

# One round trip, which is also the pool's ping.
REPLAY_SQL = """
SELECT pg_is_in_recovery(),
       coalesce(pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn(), true),
       EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'),
       extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8,
       pg_last_wal_replay_lsn()::text
"""
REPLAY = "gridmap_replay"  # a pooled connection's info: its server's Replay as of its checkout
CONNECT_TIMEOUT_S = 3
NO_PRIMARY_TRUST_S = 5.0  # how long "no primary answers" is believed before it is asked again


@dataclass(frozen=True)
class Replay:
    """What a server says of its replay (REPLAY_SQL)."""

    standby: bool
    caught_up: bool  # it has replayed every WAL record it received
    streaming: bool  # its WAL receiver streams from a primary
    last_replay_age_s: float | None  # age of the last replayed transaction
    replay_lsn: int | None = None  # how far it replayed the primary's WAL (None on a primary)

    def has_replayed(self, lsn: int) -> bool:
        """Whether a read here sees every commit below `lsn` (a primary has them all)."""
        return not self.standby or (self.replay_lsn is not None and self.replay_lsn >= lsn)


def staleness_s(replay: Replay) -> float | None:
    """How old the server's data may be, in seconds; None for a standby cut off from its primary."""
    if not replay.standby:
        return 0.0
    if replay.caught_up:
        return 0.0 if replay.streaming else None
    return replay.last_replay_age_s if replay.last_replay_age_s is not None else math.inf


def read_replay(connection: psycopg.Connection) -> Replay:
    """Ask a server for its Replay (leaves no transaction open)."""
    with connection.cursor() as cursor:
        cursor.execute(REPLAY_SQL, prepare=False)
        standby, caught_up, streaming, age, lsn = cursor.fetchone()
    if connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        connection.rollback()
    return Replay(bool(standby), bool(caught_up), bool(streaming), age, lsn_number(lsn) if lsn else None)


class StandbyConnector:
    """Makes the read engine's connections: a fresh standby first, else the primary."""

    def __init__(self, params: dict, max_lag_s: float) -> None:
        """`params`: psycopg's connection parameters, host and port listing every node."""
        self.max_lag_s = max_lag_s
        hosts, ports = str(params["host"]).split(","), str(params.get("port", "5432")).split(",")
        ports = ports * len(hosts) if len(ports) == 1 else ports
        self._nodes = list(zip(hosts, ports, strict=True))
        self._params = {k: v for k, v in params.items() if k not in ("host", "port", "target_session_attrs")}
        self._params.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
        self._no_primary_at = -math.inf

    def fresh_enough(self, connection: psycopg.Connection) -> Replay | None:
        """The server's Replay if reads may use this connection now, else None (the check on
        every checkout)."""
        replay = read_replay(connection)
        age = staleness_s(replay)
        if age is None:
            return replay if time.monotonic() - self._no_primary_at < NO_PRIMARY_TRUST_S else None
        return replay if age <= self.max_lag_s else None

    def connect(self) -> psycopg.Connection:
        """A connection to a fresh standby, else to the primary, else to a cut-off standby."""
        # libpq's own choice first: one call, a random standby of the list.
        first = self._try(self._nodes, "prefer-standby", load_balance_hosts="random")
        tried = _node_of(first)
        if first is not None and self._usable(first):
            return first
        cut_off = None
        for node in random.sample(self._nodes, len(self._nodes)):
            if node == tried or (connection := self._try([node], "standby")) is None:
                continue
            age = self._age(connection)
            if age is not None and age <= self.max_lag_s:
                return connection
            if age is None and cut_off is None and not connection.closed:
                cut_off = connection
            else:
                connection.close()
        primary = self._try(self._nodes, "read-write")
        if primary is not None:
            if cut_off is not None:
                cut_off.close()
            return primary
        self._no_primary_at = time.monotonic()
        if cut_off is not None:
            return cut_off
        raise psycopg.OperationalError("no server to read from: no fresh standby and no primary answers")

    def _usable(self, connection: psycopg.Connection) -> bool:
        """Fresh enough; closed if not."""
        age = self._age(connection)
        if age is not None and age <= self.max_lag_s:
            return True
        connection.close()
        return False

    def _age(self, connection: psycopg.Connection) -> float | None:
        """staleness_s of the connection's server (infinite, and closed, if it cannot say)."""
        try:
            return staleness_s(read_replay(connection))
        except psycopg.Error:
            connection.close()
            return math.inf

    def _try(self, nodes: list[tuple[str, str]], attrs: str, **extra: str) -> psycopg.Connection | None:
        hosts, ports = ",".join(h for h, _ in nodes), ",".join(p for _, p in nodes)
        try:
            return psycopg.connect(
                host=hosts,
                port=ports,
                target_session_attrs=attrs,
                **self._params,
                **extra,
                **SERVICE_CONNECT_ARGS,
            )
        except psycopg.OperationalError:
            return None


def _node_of(connection: psycopg.Connection | None) -> tuple[str, str] | None:
    if connection is None or connection.closed:
        return None
    return connection.info.host, str(connection.info.port)


def standby_read_url(database_url: str | None, read_database_url: str | None, enabled: bool) -> str | None:
    """The URL whose hosts reads go to, None when reads stay on the primary."""
    if read_database_url:
        return normalize_url(read_database_url)
    return normalize_url(database_url) if enabled and database_url else None


@lru_cache(maxsize=4)
def read_engine(url: str, max_lag_s: float) -> Engine:
    """The pooled engine of standby reads for `url`'s hosts (one per process)."""
    probe = create_engine(url)
    _, params = probe.dialect.create_connect_args(probe.url)
    probe.dispose()
    connector = StandbyConnector(params, max_lag_s)
    engine = create_engine(url, creator=connector.connect, pool_size=10, max_overflow=10)

    @event.listens_for(engine, "checkout")
    def _check(dbapi_connection, record, proxy) -> None:
        try:
            fresh = connector.fresh_enough(dbapi_connection)
        except psycopg.Error as exc:
            raise DisconnectionError("lost: " + str(exc)) from exc
        record.info[REPLAY] = fresh  # how far this server had replayed when handed out
        if fresh is None:
            # SQLAlchemy drops the connection and makes another (connector.connect).
            raise DisconnectionError("a standby lagging beyond GRIDMAP_READ_MAX_LAG_S")

    return engine


class StandbyReadSession(Session):
    """A read session: SELECTs run on the read engine, anything else (an audit entry) on the primary."""

    def __init__(
        self, *, primary: Engine, standby: Engine, read_after: int | None = None, **kwargs: object
    ) -> None:
        """Both engines in autocommit: every statement stands alone. `read_after`: a WAL position
        (the client's last write) the standby must have replayed, else the reads go to the primary."""
        kwargs["bind"] = primary
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._standby: Engine | None = standby
        self._read_after = read_after

    def get_bind(self, mapper=None, clause=None, **kwargs):
        """The read engine for a SELECT, the primary for the rest (and for a connection asked for
        without a statement: what it will run is unknown)."""
        if clause is not None and _is_read(clause) and self._standby_has_replayed():
            return self._standby
        return super().get_bind(mapper, clause=clause, **kwargs)

    def _standby_has_replayed(self) -> bool:
        """Whether the read connection's server has the client's last write (checked once: the
        session keeps that connection)."""
        if self._standby is None:
            return False
        if self._read_after is not None:
            connection = self.connection(bind_arguments={"bind": self._standby})
            replay: Replay | None = connection.info.get(REPLAY)
            if replay is None or not replay.has_replayed(self._read_after):
                self._standby = None  # behind the client's write: this session reads the primary
                return False
            self._read_after = None
        return True


# A statement that may write, or take a lock or a sequence value, goes to the primary.
_WRITES = re.compile(
    r"\b(INSERT|UPDATE|DELETE|MERGE|TRUNCATE|COPY|NEXTVAL|SETVAL|PG_ADVISORY\w*|PG_NOTIFY)\b", re.I
)


def _is_read(clause: object) -> bool:
    if isinstance(clause, Select):
        return clause._for_update_arg is None
    if isinstance(clause, TextClause):
        words = clause.text.lstrip().split(None, 1)
        return bool(words) and words[0].upper() in ("SELECT", "WITH") and not _WRITES.search(clause.text)
    return False


def reads_on_standbys(settings: Settings) -> bool:
    """Whether the settings send reads to standbys."""
    return (
        standby_read_url(settings.database_url, settings.read_database_url, settings.read_from_standby)
        is not None
    )


def standby_sessions(settings: Settings, primary: Engine) -> sessionmaker[Session] | None:
    """Sessions for reads that a fresh standby may serve (`sessions(read_after=lsn)`: one that has
    replayed that far); None when the settings keep reads home."""
    url = standby_read_url(settings.database_url, settings.read_database_url, settings.read_from_standby)
    if url is None:
        return None
    autocommit = {"isolation_level": "AUTOCOMMIT"}
    standby = read_engine(url, settings.read_max_lag_s).execution_options(**autocommit)
    primary = primary.execution_options(**autocommit)
    return sessionmaker(class_=StandbyReadSession, primary=primary, standby=standby, expire_on_commit=False)
