"""A grid's (or micro-grid's) figures per Beijing day, counted from its cases and their history.

The daily roll-up keeps units down to the community (migration 0022_case_rollup_keys): a redraw
moves cases between grids, mostly of one community, and so touches no roll-up row. A grid holds
few cases (10 M a year over 400,000 grids: ~25 each), so its figures are counted when asked: its
cases by the unit and grid indexes (every month's partition), then their history by case, the
same events the roll-up's triggers count (store.case_rollup.HISTORY_SQL, the same Beijing day).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time
from os.path import commonprefix

from sqlalchemy import text
from sqlalchemy.orm import Session

from cases.case_figures import FIGURES, Figures, Window, combine
from cases.worktime import SHANGHAI
from store.case_filters import in_unit_sql
from store.case_rollup import COUNTS, HISTORY_SQL, members_sql
from store.custom_plans import custom_plans

DAY = "(({0}) AT TIME ZONE 'Asia/Shanghai')::date"
NONE = ", ".join(f"0 AS {f}" for f in FIGURES[3:])  # the history figures of a case's own event
# Each event of the unit's cases in [:start, :end): a report, a close (with its handling time), a
# history entry that counts (by its case: a grid's few cases, each entry found by its index).
EVENTS = f"""
    SELECT c.code, {DAY.format("c.reported_at")} AS day, 1 AS received, 0 AS closed, 0::bigint AS closed_us,
           {NONE}
    FROM mine c WHERE c.reported_at >= :start AND c.reported_at < :end
    UNION ALL
    SELECT c.code, {DAY.format("c.closed_at")}, 0, 1,
           round(extract(epoch FROM c.closed_at - c.reported_at) * 1000000)::bigint, {NONE}
    FROM mine c WHERE c.closed_at >= :start AND c.closed_at < :end
    UNION ALL
    SELECT c.code, {DAY.format("h.at")}, 0, 0, 0::bigint,
           {", ".join(f"coalesce({cond}, false)::int" for cond in HISTORY_SQL.values())}
    FROM mine c CROSS JOIN LATERAL (SELECT * FROM case_history h WHERE h.case_id = c.id) h
    WHERE h.at >= :start AND h.at < :end AND {COUNTS}"""


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=SHANGHAI)


def by_day(session: Session, units: Sequence[str], first: date, last: date) -> dict[str, dict[date, Figures]]:
    """Each unit's figures of each Beijing day in [first, last) that has any (units below the
    community: grids, micro-grids)."""
    return _events_by_day(session, units, _midnight(first), _midnight(last))


def in_window(session: Session, units: Sequence[str], window: Window) -> dict[str, Figures]:
    """Each unit's figures of events within the window's hours (store.case_rollup.in_window's,
    read from the units' cases rather than from every case's events in those hours)."""
    found = _events_by_day(session, units, window.start, window.end)
    return {unit: _summed(days) for unit, days in found.items()}


def _events_by_day(
    session: Session, units: Sequence[str], start: datetime, end: datetime
) -> dict[str, dict[date, Figures]]:
    """Each unit's figures of events in [start, end), per Beijing day."""
    found: dict[str, dict[date, Figures]] = {unit: {} for unit in units}
    if not units or start >= end:
        return found
    member, params = members_sql(list(units))
    # The units' common prefix picks their cases by index first (their parent's, for a community's
    # grids); the join then says whose each is.
    prefix = commonprefix(list(units))  # noqa: RUF071 (codes, not paths: their characters' prefix)
    common, common_params = in_unit_sql(prefix, "common_prefix")
    sums = ", ".join(f"sum({f}) AS {f}" for f in FIGURES)
    sql = f"""WITH mine AS MATERIALIZED (
                  SELECT u.code, c.id, c.reported_at, c.closed_at FROM cases c JOIN {member} WHERE {common})
              SELECT e.code, e.day, {sums} FROM ({EVENTS}) e GROUP BY e.code, e.day"""
    params |= common_params | {"start": start, "end": end}
    with custom_plans(session):  # a code's prefix gives an index range only to a plan for its value
        rows = session.execute(text(sql), params).all()
    for row in rows:
        found[row.code][row.day] = {f: int(getattr(row, f) or 0) for f in FIGURES}
    return found


def _summed(days: dict[date, Figures]) -> Figures:
    return combine((1, figures) for figures in days.values())


def totals(session: Session, units: Sequence[str], first: date, last: date) -> dict[str, Figures]:
    """Each unit's figures summed over the Beijing days [first, last)."""
    return {unit: _summed(days) for unit, days in by_day(session, units, first, last).items()}
