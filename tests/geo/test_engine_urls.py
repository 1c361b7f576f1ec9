"""Database URLs as operators write them: libpq multi-host URLs reach SQLAlchemy and psycopg alike."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import create_engine

from geo.db.engine import libpq_conninfo, normalize_url

PATRONI_URL = "postgresql://svc:s%40cret@10.0.0.1:5432,10.0.0.2:5433,10.0.0.3:5432/gridmap?target_session_attrs=read-write"


def test_a_multi_host_url_keeps_every_host_its_port_and_the_session_attribute():
    engine = create_engine(normalize_url(PATRONI_URL))
    info = conninfo_to_dict(libpq_conninfo(engine))
    assert info["host"] == "10.0.0.1,10.0.0.2,10.0.0.3" and info["port"] == "5432,5433,5432"
    assert info["target_session_attrs"] == "read-write"
    assert (info["user"], info["password"], info["dbname"]) == ("svc", "s@cret", "gridmap")


def test_a_single_host_url_is_only_given_the_psycopg_driver():
    assert normalize_url("postgresql://a:b@db:5432/gridmap") == "postgresql+psycopg://a:b@db:5432/gridmap"
    info = conninfo_to_dict(libpq_conninfo(create_engine(normalize_url("postgres://a:b@db:6432/x"))))
    assert (info["host"], info["port"], info["dbname"]) == ("db", "6432", "x")
