"""The command dashboard's figures for a unit, read from the cases and their history.

Every period figure is /stats' (store.case_stats.statistics) for the same unit and period, and
every "overdue now" count is GET /cases' (store.cases.list_cases with overdue=true over the open
statuses): the dashboard calls those functions rather than restating them, so its numbers agree
with the API by construction. What /stats has no figure for (cases per day, per category, per
place) is counted here with the same rule for which cases belong to a unit (in_unit_sql).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from cases import case_figures as figures_of
from cases import dashboard as rules_of
from cases.lifecycle import OPEN_STATUSES
from store import case_rollup, case_stats, mapdata

# filter_sql is GET /cases' filter itself: the per-child overdue counts use it rather than restate it.
from store.case_filters import CaseFilter, filter_sql, in_unit_sql
from store.cases import Rules, list_cases
from store.geometry import from_wkb
from store.units import valid_at_sql

CURRENT = valid_at_sql("v", None)


def unit_ref(session: Session, code: str) -> dict[str, Any] | None:
    """A current unit's code, name and level; None if there is none."""
    row = session.execute(
        text(f"SELECT u.code, v.name, u.level FROM units u JOIN unit_versions v USING (code) "
             f"WHERE u.code = :code AND {CURRENT}"),
        {"code": code},
    ).first()  # fmt: skip
    return dict(row._mapping) if row is not None else None


def children(session: Session, code: str) -> list[dict[str, Any]]:
    """The unit's current children (streets of a county, communities of a street…), by code."""
    rows = session.execute(
        text(f"SELECT u.code, v.name, u.level FROM units u JOIN unit_versions v USING (code) "
             f"WHERE u.parent_code = :code AND {CURRENT} ORDER BY u.code"),
        {"code": code},
    ).all()  # fmt: skip
    return [dict(r._mapping) for r in rows]


def case_count(session: Session, rules: Rules, unit: str, *, overdue: bool | None = None) -> int:
    """Open cases of the unit now (overdue ones with overdue=True), as GET /cases counts them."""
    f = CaseFilter(status=OPEN_STATUSES, unit=unit, overdue=overdue, limit=1)
    return list_cases(session, f, rules)[0]


def ranking(session: Session, rules: Rules, unit: str, month: rules_of.Period) -> list[dict[str, Any]]:
    """The unit's children ranked by this month's on-time rate, then by their overdue cases now.

    Each child's figures are /stats' received, closed and on-time stages for the month (the same
    function, store.case_stats.figures, for all children at once) and GET /cases' overdue count,
    counted for all children in one pass.
    """
    kids = children(session, unit)
    if not kids:
        return []
    codes = [k["code"] for k in kids]
    month_figures = case_stats.figures(session, codes, month.start, month.end)
    overdue = _overdue_by_child(session, unit, codes)
    rows = []
    for child in kids:
        f = month_figures[child["code"]]
        stage_done, stage_kept = figures_of.stages_done(f)
        rows.append(
            {
                **child,
                "received": f["received"],
                "closed": f["closed"],
                "stages_done": stage_done,
                "stages_on_time": stage_kept,
                "on_time_rate": rules_of.rate(stage_kept, stage_done),
                "overdue_now": overdue.get(child["code"], 0),
            }
        )
    rows.sort(key=rules_of.ranking_key)
    return [{"rank": n, **row} for n, row in enumerate(rows, 1)]


def _overdue_by_child(session: Session, unit: str, codes: list[str]) -> dict[str, int]:
    """Open cases overdue now per child, with GET /cases' own filter (overdue=true, open statuses)."""
    member, params = case_rollup.members_sql(codes)
    # The parent's own filter first: its prefix picks its open cases by index, where the children's
    # join alone read the overdue cases of every unit (10 M cases over a province: 2.1 s).
    where, filter_params = filter_sql(CaseFilter(unit=unit, status=OPEN_STATUSES, overdue=True))
    # "Now" is the database's clock, as list_cases takes it.
    now = session.execute(text("SELECT clock_timestamp()")).scalar_one()
    rows = session.execute(
        text(f"SELECT u.code, count(*) AS n FROM cases c JOIN {member} WHERE {where} GROUP BY u.code"),
        params | filter_params | {"now": now},
    ).all()
    return {r.code: r.n for r in rows}


def trend(session: Session, unit: str, now: datetime) -> list[dict[str, Any]]:
    """Cases received and closed on each of the last 30 days (China time), oldest first: /stats'
    counts for each day (the roll-up's days, less the rest of today, which has not happened yet)."""
    days = rules_of.trend_days(now)
    plan = figures_of.split(rules_of.day_start(days[0]), now)
    by_day = case_stats.by_day(session, unit, plan.first, plan.last)
    for window in plan.windows:
        part = case_stats.in_window(session, [unit], window)[unit]
        by_day[window.day] = figures_of.combine([(1, by_day.get(window.day, {})), (window.sign, part)])
    return [
        {
            "date": day,
            "received": by_day[day]["received"] if day in by_day else 0,
            "closed": by_day[day]["closed"] if day in by_day else 0,
        }
        for day in days
    ]


def top_categories(
    session: Session, rules: Rules, unit: str, period: rules_of.Period
) -> list[dict[str, Any]]:
    """The categories (subclasses) most received in the period, most first, with their names."""
    in_unit, params = in_unit_sql(unit)
    rows = session.execute(
        text(
            f"""SELECT c.category, count(*) AS n FROM cases c
                WHERE {in_unit} AND {case_stats.RECEIVED}
                GROUP BY c.category ORDER BY n DESC, c.category LIMIT :top"""
        ),
        params | {"start": period.start, "end": period.end, "top": rules_of.TOP_CATEGORIES},
    ).all()
    return [{"code": r.category, **_category_names(rules, r.category), "count": r.n} for r in rows]


def _category_names(rules: Rules, code: str) -> dict[str, str]:
    try:
        category = rules.categories.get(code)
    except KeyError:  # a code since dropped from the table: show the code
        return {"name": code, "name_en": code}
    return {"name": category.name, "name_en": category.name_en}


def density(session: Session, unit: str, period: rules_of.Period) -> dict[str, Any]:
    """Cases received in the period counted per square cell of the unit's extent: [lon, lat, n] at
    each cell's centre (cells without cases are left out)."""
    bounds = mapdata.unit_bounds(session, unit)
    if bounds is None:
        return {"cell_deg": None, "cells": []}
    cell = rules_of.density_cell(bounds)
    in_unit, params = in_unit_sql(unit)
    rows = session.execute(
        text(
            f"""SELECT ST_X(p) AS lon, ST_Y(p) AS lat, n FROM (
                  SELECT ST_SnapToGrid(c.geom, :cell) AS p, count(*) AS n FROM cases c
                  WHERE {in_unit} AND {case_stats.RECEIVED}
                  GROUP BY 1) s ORDER BY n DESC"""
        ),
        params | {"cell": cell, "start": period.start, "end": period.end},
    ).all()
    return {"cell_deg": round(cell, 6), "cells": [[round(r.lon, 5), round(r.lat, 5), r.n] for r in rows]}


@dataclass(frozen=True)
class Outline:
    """A unit's outline, simplified for drawing."""

    code: str
    name: str
    level: str
    geometry: shapely.Geometry


def outlines(session: Session, unit: str) -> list[Outline]:
    """The unit's children (or the unit itself, without children), simplified for the map."""
    bounds = mapdata.unit_bounds(session, unit)
    if bounds is None:
        return []
    tolerance = rules_of.density_cell(bounds) / 20  # well under a density cell: invisible on the screen
    rows = session.execute(
        text(
            f"""SELECT u.code, v.name, u.level,
                       ST_AsBinary(ST_SimplifyPreserveTopology(v.geom, :tol)) AS wkb
                FROM units u JOIN unit_versions v USING (code)
                WHERE {CURRENT} AND (u.parent_code = :code
                      OR (u.code = :code AND NOT EXISTS (
                          SELECT 1 FROM units k JOIN unit_versions w ON w.code = k.code
                          WHERE k.parent_code = :code AND w.valid_to IS NULL)))
                ORDER BY u.code"""
        ),
        {"code": unit, "tol": tolerance},
    ).all()
    return [Outline(r.code, r.name, r.level, from_wkb(r.wkb)) for r in rows]
