"""The cases' daily roll-up (0019_case_rollup): /stats read from it equals /stats counted directly
from the cases and their history (tests/store/stats_oracle.py, the query it replaced), for every
unit and period, after random sequences of intakes and moves (close, reopen, reassignment to
another unit, redraw, escalation, revisit, void, merge) across a month boundary; and the rebuild
(the migration's backfill) gives the rows the triggers kept."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from sqlalchemy import text

from cases.case_figures import split
from cases.lifecycle import TRANSITIONS, CaseStatus, Move, Need, Rating
from cases.model import Intake
from cases.rules import Rules
from cases.worktime import SHANGHAI
from errors import Refused
from geo.assignment import Assignment, GridRef, Rule, Status, UnitRef
from services.case_redraw import reassign_after_redraw
from services.cases import move_case
from services.escalation import escalate_overdue
from services.intake import create_case
from store import case_rollup
from store.case_stats import statistics
from tests import factories as f
from tests.store.stats_oracle import statistics as oracle

GRIDS = [f.grid_code(n) for n in range(1, 5)]
# A point inside each grid (2×2 squares of the test county), and one outside every unit.
POINTS = [
    (f.X0 + 0.01, f.Y0 + 0.03),
    (f.X0 + 0.03, f.Y0 + 0.03),
    (f.X0 + 0.01, f.Y0 + 0.01),
    (f.X0 + 0.03, f.Y0 + 0.01),
    (113.0, 30.0),
]
UNITS = [None, "41", "4199", f.COUNTY, "419998", f.STREET, f.COMMUNITY, *GRIDS]
TARGETS = [f.STREET, f.COMMUNITY, *GRIDS, "cgj"]  # whom a case may be reassigned to
START = datetime(2026, 11, 29, 20, 0, tzinfo=SHANGHAI)  # the sequences run into December

steps = st.lists(
    st.tuples(
        st.sampled_from(["report", "report", "move", "move", "move", "reassign", "redraw", "escalate"]),
        st.integers(0, 9),  # which case (modulo the cases made) or which point
        st.integers(0, 9),  # which move, target or rating
        st.integers(0, 30 * 60),  # minutes until the step
    ),
    min_size=4,
    max_size=30,
)


@pytest.fixture
def rules(settings):
    return Rules.load(settings)


def _assignment(code: str) -> Assignment:
    """The rule's answer for a point of grid `code` (its chain of units from the county down)."""
    chain = [UnitRef(code[:n], code[:n], lv) for n, lv in ((6, "county"), (9, "street"), (12, "community"))]
    return Assignment(Status.ASSIGNED, Rule.COVERS, GridRef(code, code, "urban", 1), 0.0, chain, None)


def _move(session, case_id: int, choice: int, rules: Rules, now: datetime) -> None:
    """One of the moves the case's status allows, with what it needs."""
    status = CaseStatus(
        session.execute(text("SELECT status FROM cases WHERE id = :id"), {"id": case_id}).scalar()
    )
    allowed = sorted(TRANSITIONS[status])
    if not allowed:
        return
    to = allowed[choice % len(allowed)]
    needs = TRANSITIONS[status][to]
    other = session.execute(text("SELECT min(id) FROM cases WHERE id <> :id"), {"id": case_id}).scalar()
    move = Move(
        to,
        reason="理由" if Need.REASON in needs else None,
        unit=TARGETS[choice % len(TARGETS)] if Need.UNIT in needs else None,
        extend_by="1d" if Need.EXTEND_BY in needs else None,
        into=other if Need.INTO in needs else None,
        rating=list(Rating)[choice % len(Rating)] if Need.RATING in needs else None,
    )
    move_case(session, case_id, move, rules, actor="test", now=now)


def _step(session, rules: Rules, ids: list[int], step: tuple[str, int, int, int], now: datetime) -> None:
    kind, which, choice, _ = step
    case_id = ids[which % len(ids)] if ids else None
    if kind == "report" or case_id is None:
        lon, lat = POINTS[which % len(POINTS)]
        intake = Intake(lon, lat, "cgcs2000", lon, lat, 5.0, "report", "0101" if choice % 2 else "0102", "x")
        ids.append(create_case(session, intake, rules, actor="test", now=now)[0])
    elif kind == "move":
        _move(session, case_id, choice, rules, now)
    elif kind == "reassign":
        _move(session, case_id, choice, rules, now)  # any move; reassignment when allowed
        move_case(session, case_id, Move(CaseStatus.REASSIGNED, "改派", TARGETS[choice % len(TARGETS)]),
                  rules, actor="test", now=now)  # fmt: skip
    elif kind == "redraw":
        moved = [(case_id, _assignment(GRIDS[choice % len(GRIDS)]))]
        reassign_after_redraw(session, moved, actor="test", plan_id=1, now=now)
    else:
        escalate_overdue(session, rules, now=now + timedelta(days=choice))


def _periods(end: datetime) -> list[tuple[datetime, datetime]]:
    """Whole days, the month boundary, and periods cut inside days (from either side)."""
    day = timedelta(days=1)
    midnight = START.replace(hour=0)
    december = datetime(2026, 12, 1, tzinfo=SHANGHAI)
    return [
        (midnight - day, end + 2 * day),
        (midnight, december),
        (december, end + 2 * day),
        (december - timedelta(hours=5), december + timedelta(hours=7)),
        (START + timedelta(hours=3), end - timedelta(hours=2)),
        (START + timedelta(hours=15), end + timedelta(minutes=1)),
        (december + timedelta(hours=13, minutes=5), december + timedelta(hours=13, minutes=50)),
        (midnight + 2 * day + timedelta(hours=11), midnight + 3 * day + timedelta(hours=13)),
    ]


def _rows(session) -> dict:
    """The roll-up's sums per key and day (shards added), without rows of zeros."""
    sums = ", ".join(f"sum({c})" for c in case_rollup.FIGURES)
    rows = session.execute(text(f"SELECT unit, day, {sums} FROM case_rollup GROUP BY unit, day")).all()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows if any(r[2:])}


@examples(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps)
def test_rollup_statistics_equal_the_direct_count_after_any_moves(session, county, rules, steps):
    savepoint = session.begin_nested()
    try:
        ids: list[int] = []
        now = START
        for step in steps:
            now += timedelta(minutes=step[3])
            try:
                with session.begin_nested():
                    _step(session, rules, ids, step, now)
            except Refused:
                pass  # a move the workflow refuses (illegal from the status, a unit it cannot take)
        for start, end in [(a, b) for a, b in _periods(now) if a < b]:
            for unit in UNITS:
                assert statistics(session, unit, start, end) == oracle(session, unit, start, end), (
                    unit,
                    start,
                    end,
                )
        kept = _rows(session)
        case_rollup.rebuild(session)
        assert _rows(session) == kept
    finally:
        savepoint.rollback()


def test_a_period_is_split_into_days_and_windows_that_add_up():
    """Every split covers exactly [start, end): Σ sign × length of its parts = the period's length."""
    start = datetime(2026, 11, 30, 9, 30, tzinfo=SHANGHAI)
    for hours in (0.5, 3, 11, 13, 25, 49.5, 24 * 40):
        end = start + timedelta(hours=hours)
        plan = split(start, end)
        days = (plan.last - plan.first).days * timedelta(days=1)
        windows = sum((w.sign * (w.end - w.start) for w in plan.windows), timedelta())
        assert days + windows == end - start
        assert all(w.end - w.start <= timedelta(hours=12) for w in plan.windows)
