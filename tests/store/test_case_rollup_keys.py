"""The roll-up keyed down to the community (0022_case_rollup_keys): a redraw moving cases between
grids of one community writes no roll-up row, and the grids' figures, counted from their cases,
stay right for the old grid and the new one (each alone, and together as a community's children)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from cases.lifecycle import CaseStatus, Move
from cases.model import Intake
from cases.rules import Rules
from cases.worktime import SHANGHAI
from services.case_redraw import reassign_after_redraw
from services.cases import move_case
from services.intake import create_case
from store.case_stats import figures, statistics
from tests import factories as f
from tests.store.stats_oracle import statistics as oracle
from tests.store.test_case_rollup import POINTS, _assignment

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=SHANGHAI)
OLD, NEW = f.grid_code(1), f.grid_code(2)  # both in f.COMMUNITY
WALK = ["verified", "filed", "dispatched", "accepted", "in_progress"]


@pytest.fixture
def rules(settings):
    return Rules.load(settings)


def _rollup(session) -> list[tuple]:
    """Every roll-up row with its physical place and writing transaction: any write changes them."""
    return [tuple(r) for r in session.execute(text("SELECT ctid, xmin, * FROM case_rollup ORDER BY ctid"))]


def test_a_redraw_within_a_community_leaves_the_rollup_untouched(session, county, rules):
    ids = []
    for n in range(3):  # three cases in the old grid, over two days; the two moved have counted history
        lon, lat = POINTS[0]
        intake = Intake(lon, lat, "cgcs2000", lon, lat, 5.0, "report", "0101", "x")
        ids.append(create_case(session, intake, rules, actor="test", now=NOW + timedelta(hours=20 * n))[0])
    for n, case_id in enumerate(ids[:2]):
        for step, to in enumerate(WALK[: 3 + n]):
            at = NOW + timedelta(days=1, hours=2 + step)
            move_case(session, case_id, Move(CaseStatus(to)), rules, actor="test", now=at)
    session.flush()
    before = _rollup(session)
    assert before  # the triggers wrote the cases' rows
    reported = dict(session.execute(text("SELECT id, reported_at FROM cases")).all())
    moves = [(case_id, reported[case_id], _assignment(NEW)) for case_id in ids[:2]]
    later = NOW + timedelta(days=3)
    reassign_after_redraw(session, moves, actor="test", plan_id=1, now=later)
    on = dict(session.execute(text("SELECT id, unit_code FROM cases")).all())
    assert [on[i] for i in ids] == [NEW, NEW, OLD]  # the redraw moved two cases to the new grid
    assert _rollup(session) == before  # and wrote no roll-up row
    start, end = NOW - timedelta(days=1), NOW + timedelta(days=5)
    for unit in (OLD, NEW, f.COMMUNITY, f.COUNTY):
        assert statistics(session, unit, start, end) == oracle(session, unit, start, end), unit
    assert statistics(session, OLD, start, end)["received"] == 1
    assert statistics(session, NEW, start, end)["received"] == 2
    assert statistics(session, NEW, start, end)["on_time"]["verify"]["done"] == 2  # their history moved
    # A community's children (the dashboard's ranking): the grids at once, as each alone.
    both = figures(session, [OLD, NEW, f.grid_code(3)], start, end)
    for unit in (OLD, NEW, f.grid_code(3)):
        assert both[unit] == figures(session, [unit], start, end)[unit]
    # Within a day: whole days from the cases, the cut-off hours from them too.
    cut = (NOW + timedelta(hours=3), NOW + timedelta(days=1, hours=3))
    assert statistics(session, NEW, *cut) == oracle(session, NEW, *cut)
