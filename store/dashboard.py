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

from cases import dashboard as rules_of
from cases.lifecycle import OPEN_STATUSES
from store import case_stats, mapdata

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

    Each child's figures are /stats' received, closed and on-time stages for the month and
    GET /cases' overdue count, counted for all children in one pass each (one /stats per child
    took 4.4 s for a county's 21 streets with 10,000 cases on this busy machine).
    """
    kids = children(session, unit)
    if not kids:
        return []
    member, params = _member_of_child([k["code"] for k in kids])
    params |= {"start": month.start, "end": month.end}
    volumes = session.execute(
        text(f"""SELECT u.code, count(*) FILTER (WHERE {case_stats.RECEIVED}) AS received,
                        count(*) FILTER (WHERE {case_stats.CLOSED}) AS closed
                 FROM cases c JOIN {member} GROUP BY u.code"""),
        params,
    ).all()  # fmt: skip
    stages = session.execute(
        text(f"""SELECT u.code, count(*) AS done, count(*) FILTER (WHERE h.on_time) AS on_time
                 FROM case_history h JOIN cases c ON c.id = h.case_id JOIN {member}
                 WHERE {case_stats.STAGE_DONE} GROUP BY u.code"""),
        params,
    ).all()  # fmt: skip
    overdue = _overdue_by_child(session, member, params)
    counted = {r.code: r for r in volumes}
    done = {r.code: r for r in stages}
    rows = []
    for child in kids:
        code = child["code"]
        stage_done = done[code].done if code in done else 0
        stage_kept = done[code].on_time if code in done else 0
        rows.append(
            {
                **child,
                "received": counted[code].received if code in counted else 0,
                "closed": counted[code].closed if code in counted else 0,
                "stages_done": stage_done,
                "stages_on_time": stage_kept,
                "on_time_rate": rules_of.rate(stage_kept, stage_done),
                "overdue_now": overdue.get(code, 0),
            }
        )
    rows.sort(key=rules_of.ranking_key)
    return [{"rank": n, **row} for n, row in enumerate(rows, 1)]


def _member_of_child(codes: list[str]) -> tuple[str, dict[str, Any]]:
    """SQL joining case `c` to each child `u` it belongs to: in_unit_sql's rule (the one rule of
    which cases a unit holds), with the child's prefix taken from the joined row."""
    one, _ = in_unit_sql(codes[0], "child_prefix")  # the rule's shape is the same for siblings
    condition = one.replace(":child_prefix", "(u.code || '%')")
    return f"unnest(CAST(:children AS text[])) AS u(code) ON {condition}", {"children": codes}


def _overdue_by_child(session: Session, member: str, params: dict[str, Any]) -> dict[str, int]:
    """Open cases overdue now per child, with GET /cases' own filter (overdue=true, open statuses)."""
    where, filter_params = filter_sql(CaseFilter(status=OPEN_STATUSES, overdue=True))
    # "Now" is the database's clock, as list_cases takes it.
    now = session.execute(text("SELECT clock_timestamp()")).scalar_one()
    rows = session.execute(
        text(f"SELECT u.code, count(*) AS n FROM cases c JOIN {member} WHERE {where} GROUP BY u.code"),
        params | filter_params | {"now": now},
    ).all()
    return {r.code: r.n for r in rows}


def trend(session: Session, unit: str, now: datetime) -> list[dict[str, Any]]:
    """Cases received and closed on each of the last 30 days (China time), oldest first."""
    in_unit, params = in_unit_sql(unit)
    days = rules_of.trend_days(now)
    start, end = rules_of.day_start(days[0]), now
    rows = session.execute(
        text(
            f"""SELECT (e.at AT TIME ZONE 'Asia/Shanghai')::date AS day,
                  count(*) FILTER (WHERE e.kind = 'received') AS received,
                  count(*) FILTER (WHERE e.kind = 'closed') AS closed
                FROM cases c
                CROSS JOIN LATERAL (VALUES ('received', c.reported_at), ('closed', c.closed_at)) e(kind, at)
                WHERE {in_unit} AND e.at >= :start AND e.at < :end
                GROUP BY 1"""
        ),
        params | {"start": start, "end": end},
    ).all()
    by_day = {r.day: r for r in rows}
    return [
        {
            "date": day,
            "received": by_day[day].received if day in by_day else 0,
            "closed": by_day[day].closed if day in by_day else 0,
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
