"""The generated year of cases (benchmarks.case_volume): the same N gives the same cases whether
loaded at once or grown chunk by chunk, every case lies in its month's partition, and the months
swapped in by the bulk load (benchmarks.partition_load) are whole partitions again: every index of
`cases`, its triggers (a report's live-feed event) and nothing left behind."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from benchmarks.case_volume import FIRST_ID, chunk, grids, load_cases
from cases.categories import STAGES
from cases.lifecycle import CaseStatus
from cases.model import Intake
from cases.rules import Rules
from services.intake import create_case
from tests import factories as f
from tests.conftest import county_database
from tests.databases import DB_PREFIX

END = datetime(2026, 11, 30, 16, tzinfo=UTC)  # 2026-12-01 00:00 in Beijing
SIZE = 400  # cases a chunk: small, so the test loads three chunks in a few seconds
# Every column of the generated cases and their history, in id order: equal fingerprints, equal data.
FINGERPRINT = """SELECT md5(string_agg(c::text, '|' ORDER BY c.id)) FROM cases c WHERE c.id < :below"""
HISTORY = """SELECT md5(string_agg(
                 concat_ws(',', case_id, at, action, to_status, details, stage, on_time, tier, unit_code),
                 '|' ORDER BY case_id, action, at)) FROM case_history WHERE case_id < :below"""


def fingerprint(url: str, cases: int) -> tuple[str, str]:
    """The md5 of the first `cases` generated cases and of their history."""
    engine = create_engine(url)
    with engine.connect() as conn:
        below = {"below": FIRST_ID + cases}
        result = conn.execute(text(FINGERPRINT), below).scalar(), conn.execute(text(HISTORY), below).scalar()
    engine.dispose()
    return result


BEFORE_GROWING: dict[str, tuple[str, str]] = {}


@pytest.fixture(scope="module")
def grown(settings) -> str:
    """A database grown to 2 chunks, then to 3 (the first two chunks' fingerprint kept before)."""
    url = county_database(settings, f"{DB_PREFIX}_volume_grown")
    assert load_cases(url, 2 * SIZE, end=END, chunk_size=SIZE) == 2 * SIZE
    BEFORE_GROWING[url] = fingerprint(url, 2 * SIZE)
    assert load_cases(url, 3 * SIZE, end=END, chunk_size=SIZE) == SIZE
    assert load_cases(url, 3 * SIZE, end=END, chunk_size=SIZE) == 0  # nothing lacks
    return url


def test_the_same_n_gives_the_same_cases(settings, grown):
    """Loading 3 chunks at once or 2 then 1 stores the same cases and history; growing keeps the first."""
    at_once = county_database(settings, f"{DB_PREFIX}_volume_once")
    assert load_cases(at_once, 3 * SIZE, end=END, chunk_size=SIZE) == 3 * SIZE
    assert fingerprint(at_once, 3 * SIZE) == fingerprint(grown, 3 * SIZE)
    assert fingerprint(grown, 2 * SIZE) == BEFORE_GROWING[grown]
    assert fingerprint(grown, 3 * SIZE) != fingerprint(grown, 2 * SIZE)


def test_a_chunk_is_drawn_from_its_own_seed(grown):
    """A chunk's text depends on its number and the seed alone."""
    engine = create_engine(grown)
    with engine.connect() as conn:
        grid = grids(conn.connection.driver_connection)
    engine.dispose()
    one, again = (chunk(1, FIRST_ID + SIZE, END, grid, 19, SIZE) for _ in range(2))
    assert (one.cases, one.history, one.ids) == (again.cases, again.history, again.ids)
    assert chunk(1, FIRST_ID + SIZE, END, grid, 20, SIZE).history != one.history
    assert len(one.ids.splitlines()) == SIZE


def test_loaded_cases_lie_in_their_months_and_are_whole(grown):
    """Each case in its Beijing month's partition; per case a report entry, its unit above its grid."""
    engine = create_engine(grown)
    with engine.connect() as conn:
        misplaced = conn.execute(
            text("""SELECT count(*) FROM cases WHERE tableoid::regclass::text
                    <> 'cases_' || to_char(reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYY_MM')""")
        ).scalar()
        counts = conn.execute(
            text("""SELECT (SELECT count(*) FROM cases), (SELECT count(*) FROM case_ids),
                           (SELECT count(DISTINCT case_id) FROM case_history WHERE action = 'report'),
                           (SELECT count(*) FROM cases WHERE NOT starts_with(grid_code, unit_code))""")
        ).one()
        months = conn.execute(text("SELECT count(DISTINCT tableoid) FROM cases")).scalar()
        statuses = set(conn.execute(text("SELECT DISTINCT status FROM cases")).scalars())
        stages = set(conn.execute(text("SELECT DISTINCT stage FROM cases WHERE stage IS NOT NULL")).scalars())
    engine.dispose()
    assert statuses <= {s.value for s in CaseStatus} and len(statuses) >= 8  # none cut short
    assert stages <= set(STAGES)
    assert misplaced == 0
    assert tuple(counts) == (3 * SIZE, 3 * SIZE, 3 * SIZE, 0)
    assert months == 12


def test_swapped_months_are_whole_partitions(settings, grown):
    """Every partition has each index of `cases`, no staging table is left, and a report after the
    load fires the triggers (its id registered, its live-feed event written)."""
    engine = create_engine(grown)
    with Session(engine) as session, session.begin():
        short = session.execute(
            text("""SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                    WHERE i.inhparent = 'cases'::regclass AND (SELECT count(*) FROM pg_index x
                          WHERE x.indrelid = c.oid) <> (SELECT count(*) FROM pg_index x
                          WHERE x.indrelid = 'cases'::regclass)""")
        ).all()
        left = session.execute(text("SELECT count(*) FROM pg_class WHERE relname LIKE 'cases%load'")).scalar()
        history_indexes = session.execute(
            text("SELECT count(*) FROM pg_indexes WHERE tablename = 'case_history'")
        ).scalar()
        x, y = f.X0 + 0.01, f.Y0 + 0.03
        intake = Intake(x, y, "wgs84", x, y, 5.0, "report", "0101", "路灯不亮")
        case_id, _ = create_case(session, intake, Rules.load(settings), actor="test", now=END)
        events = session.execute(
            text("SELECT count(*) FROM case_events WHERE case_id = :id"), {"id": case_id}
        ).scalar()
        registered = session.execute(
            text("SELECT count(*) FROM case_ids WHERE id = :id"), {"id": case_id}
        ).scalar()
    engine.dispose()
    assert short == [] and left == 0
    assert history_indexes == 3
    assert events == 1 and registered == 1
