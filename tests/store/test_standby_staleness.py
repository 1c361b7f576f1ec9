"""How old a server's data may be, and which statements a read session may send to a standby."""

from __future__ import annotations

import math

from sqlalchemy import column, select, table, text

from store.standby_reads import Replay, _is_read, staleness_s


def test_a_primary_is_never_stale_and_a_caught_up_streaming_standby_neither():
    assert staleness_s(Replay(standby=False, caught_up=True, streaming=False, last_replay_age_s=None)) == 0
    # An idle cluster: the last replayed transaction is old, but nothing waits to be replayed.
    assert staleness_s(Replay(standby=True, caught_up=True, streaming=True, last_replay_age_s=3600.0)) == 0


def test_a_standby_behind_its_received_wal_is_as_old_as_its_last_replayed_transaction():
    assert staleness_s(Replay(standby=True, caught_up=False, streaming=True, last_replay_age_s=7.5)) == 7.5
    assert (
        staleness_s(Replay(standby=True, caught_up=False, streaming=True, last_replay_age_s=None)) == math.inf
    )


def test_a_standby_cut_off_from_its_primary_has_no_measure():
    assert staleness_s(Replay(standby=True, caught_up=True, streaming=False, last_replay_age_s=1.0)) is None


def test_only_plain_reads_go_to_a_standby():
    units = table("units", column("code"))  # a Core table: the schema itself is the migrations'
    assert _is_read(select(units.c.code))
    assert not _is_read(select(units.c.code).with_for_update())
    assert _is_read(text("  SELECT count(*) FROM cases"))
    assert _is_read(text("WITH c AS (SELECT 1) SELECT * FROM c"))
    assert not _is_read(text("WITH c AS (DELETE FROM cases RETURNING id) SELECT * FROM c"))
    assert not _is_read(text("SELECT * FROM cases WHERE id = 1 FOR UPDATE"))
    assert not _is_read(text("SELECT nextval('cases_id_seq')"))
    assert not _is_read(text("SELECT pg_advisory_xact_lock(1)"))
    assert not _is_read(text("INSERT INTO audit_log (actor) VALUES ('x')"))
    assert _is_read(text("SELECT updated_at, last_update FROM t"))  # words that only contain UPDATE
