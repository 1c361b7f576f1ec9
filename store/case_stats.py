"""Performance figures (考核) for a unit and a period, from the cases' daily roll-up.

A case belongs to a unit when the unit's code prefixes the case's responsible unit or its grid
(codes nest). Figures: received, closed, on-time rate per stage, the tier each closed case was
resolved at ("small matters stay in the village"), average handling time, satisfaction, rework.
The whole Beijing days of a period are read from the roll-up (store.case_rollup, a few rows a
unit and day; a grid's from its few cases, store.case_direct), the hours a period cuts off a day
from the cases (cases.case_figures.split).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from cases.case_figures import Figures, Window, combine, rolled_up, split, statistics_answer, zero
from store import case_direct, case_rollup

# What counts in the period [:start, :end), for case `c` and history entry `h` (the cases list's
# and the dashboard's direct counts, and the roll-up's triggers, count alike).
RECEIVED = "c.reported_at >= :start AND c.reported_at < :end"
CLOSED = "c.closed_at >= :start AND c.closed_at < :end"
STAGE_DONE = "h.on_time IS NOT NULL AND h.at >= :start AND h.at < :end"


def figures(
    session: Session, units: Sequence[str | None], start: datetime, end: datetime
) -> dict[str | None, Figures]:
    """Each unit's additive figures over [start, end): its whole days from the roll-up, corrected
    by the hours the period cuts off (or adds to) them, read from the cases."""
    plan = split(start, end)
    days = whole_days(session, units, plan.first, plan.last) if plan.first < plan.last else {}
    parts: dict[str | None, list[tuple[int, Figures]]] = {u: [(1, days.get(u, zero()))] for u in units}
    for window in plan.windows:
        for unit, part in in_window(session, units, window).items():
            parts[unit].append((window.sign, part))
    return {unit: combine(p) for unit, p in parts.items()}


def _split(units: Sequence[str | None]) -> tuple[list[str | None], list[str]]:
    """(the units the roll-up keeps, down to the community; the finer ones, grids and micro-grids,
    whose figures are counted from their cases): cases.case_figures.rolled_up decides."""
    return [u for u in units if rolled_up(u)], [u for u in units if u and not rolled_up(u)]


def whole_days(
    session: Session, units: Sequence[str | None], first: date, last: date
) -> dict[str | None, Figures]:
    """Each unit's figures over the Beijing days [first, last)."""
    kept, finer = _split(units)
    rolled = case_rollup.totals(session, kept, first, last)
    return {**rolled, **case_direct.totals(session, finer, first, last)}


def by_day(session: Session, unit: str | None, first: date, last: date) -> dict[date, Figures]:
    """The unit's figures of each Beijing day in [first, last) that has any."""
    if rolled_up(unit):
        return case_rollup.by_day(session, unit, first, last)
    return case_direct.by_day(session, [unit], first, last)[unit]  # type: ignore[list-item]


def in_window(session: Session, units: Sequence[str | None], window: Window) -> dict[str | None, Figures]:
    """Each unit's figures within the window's hours, from the cases' events in those hours (a
    grid's from its own cases: fewer)."""
    kept, finer = _split(units)
    return {**case_rollup.in_window(session, kept, window), **case_direct.in_window(session, finer, window)}


def statistics(session: Session, unit: str | None, start: datetime, end: datetime) -> dict[str, Any]:
    """Figures for cases of `unit` (all when None) over [start, end)."""
    return statistics_answer(unit, start, end, figures(session, [unit], start, end)[unit])
