"""Migration 0019_case_rollup: its backfill of stored cases gives the rows the triggers keep, and a
downgrade drops the roll-up, its triggers and functions."""

from __future__ import annotations

from datetime import datetime, timedelta

from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from cases.lifecycle import CaseStatus, Move, Rating
from cases.model import Intake
from cases.rules import Rules
from cases.worktime import SHANGHAI
from services.cases import move_case
from services.imports import import_units
from services.intake import create_case
from store.case_stats import statistics
from store.migrate import alembic_config
from tests import factories as f
from tests.conftest import COUNTY_FROM, DB_PREFIX, fresh_database
from tests.store.stats_oracle import statistics as oracle
from tests.store.test_case_rollup import POINTS, _rows

BEFORE = "0018_simplified_units"
WALK = ["verified", "filed", "dispatched", "accepted", "in_progress", "handled", "checked", "closed"]


def _cases(session: Session, rules: Rules) -> None:
    """Cases in three grids and outside every unit over two months, walked to closed, one
    reassigned to the street and one revisited unsatisfied (reopened)."""
    now = datetime(2026, 11, 30, 22, 0, tzinfo=SHANGHAI)
    ids = []
    for n, (lon, lat) in enumerate(POINTS):
        intake = Intake(lon, lat, "cgcs2000", lon, lat, 5.0, "report", "0101", "x")
        ids.append(create_case(session, intake, rules, actor="test", now=now + timedelta(hours=n))[0])
    for n, case_id in enumerate(ids[:3]):
        for step, to in enumerate(WALK[: 3 + 2 * n]):
            at = now + timedelta(hours=5 + 3 * step)
            move_case(session, case_id, Move(CaseStatus(to)), rules, actor="test", now=at)
    later = now + timedelta(days=2)
    move_case(session, ids[0], Move(CaseStatus.REASSIGNED, "改派", f.STREET), rules, actor="test", now=later)
    for to in WALK[5:]:
        move_case(session, ids[1], Move(CaseStatus(to)), rules, actor="test", now=later)
    move_case(session, ids[2], Move(CaseStatus.CLOSED), rules, actor="test", now=later)
    revisit = Move(CaseStatus.REVISITED, rating=Rating.UNSATISFIED)
    move_case(session, ids[2], revisit, rules, actor="test", now=now + timedelta(days=4))


def test_backfill_equals_the_triggers_and_downgrade_drops_the_rollup(settings, tmp_path):
    url = fresh_database(settings, f"{DB_PREFIX}_rollup_migration")
    engine = create_engine(url)
    rules = Rules.load(settings)
    path = f.write_geojson(tmp_path / "county.geojson", f.hierarchy())
    with Session(engine) as session, session.begin():
        import_units(session, path, valid_from=COUNTY_FROM, settings=settings)
        _cases(session, rules)
    with Session(engine) as session:
        kept = _rows(session)
        assert kept  # the triggers wrote rows
    command.downgrade(alembic_config(url), BEFORE)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT to_regclass('case_rollup')")).scalar() is None
        assert not conn.execute(
            text("SELECT count(*) FROM pg_proc WHERE proname LIKE 'case_rollup%'")
        ).scalar()
    command.upgrade(alembic_config(url), "head")
    start, end = datetime(2026, 11, 1, tzinfo=SHANGHAI), datetime(2026, 12, 31, tzinfo=SHANGHAI)
    with Session(engine) as session:
        assert _rows(session) == kept
        for unit in (None, f.COUNTY, f.STREET, f.COMMUNITY, f.grid_code(1), f.grid_code(3)):
            assert statistics(session, unit, start, end) == oracle(session, unit, start, end)
        assert statistics(session, f.COUNTY, start, end)["reopened"] == 1
    engine.dispose()
