"""The command dashboard's figures for a unit, read from the cases and their history.

Every period figure is /stats' (geo.db.case_stats.statistics) for the same unit and period, and
every "overdue now" count is GET /cases' (geo.db.cases.list_cases with overdue=true over the open
statuses): the dashboard calls those functions rather than restating them, so its numbers agree
with the API by construction. What /stats has no figure for (cases per day, per category, per
place) is counted here with the same rule for which cases belong to a unit (in_unit_sql).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geo import dashboard as rules_of
from geo.db import mapdata
from geo.db.case_stats import statistics
from geo.db.cases import CaseFilter, Rules, in_unit_sql, list_cases
from geo.db.units import valid_at_sql
from geo.lifecycle import OPEN_STATUSES
from geo.worktime import SHANGHAI

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


def period_figures(stats: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of one /stats answer: received, closed, stage deadlines kept and missed."""
    overall = rules_of.on_time_overall(stats["on_time"])
    return {
        "from": stats["from"],
        "to": stats["to"],
        "received": stats["received"],
        "closed": stats["closed"],
        "late_stages": overall["late"],
        "on_time": overall,
    }


def ranking(session: Session, rules: Rules, unit: str, month: rules_of.Period) -> list[dict[str, Any]]:
    """The unit's children ranked by this month's on-time rate, then by their overdue cases now."""
    rows = []
    for child in children(session, unit):
        stats = statistics(session, child["code"], month.start, month.end)
        overall = rules_of.on_time_overall(stats["on_time"])
        rows.append(
            {
                **child,
                "received": stats["received"],
                "closed": stats["closed"],
                "stages_done": overall["done"],
                "stages_on_time": overall["on_time"],
                "on_time_rate": overall["rate"],
                "overdue_now": case_count(session, rules, child["code"], overdue=True),
            }
        )
    rows.sort(key=rules_of.ranking_key)
    return [{"rank": n, **row} for n, row in enumerate(rows, 1)]


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
                WHERE {in_unit} AND c.reported_at >= :start AND c.reported_at < :end
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
                  WHERE {in_unit} AND c.reported_at >= :start AND c.reported_at < :end
                  GROUP BY 1) s ORDER BY n DESC"""
        ),
        params | {"cell": cell, "start": period.start, "end": period.end},
    ).all()
    return {"cell_deg": round(cell, 6), "cells": [[round(r.lon, 5), round(r.lat, 5), r.n] for r in rows]}


def outlines(session: Session, unit: str) -> dict[str, Any]:
    """The unit's children (or the unit itself, without children) as simplified GeoJSON, for the map."""
    bounds = mapdata.unit_bounds(session, unit)
    if bounds is None:
        return {"type": "FeatureCollection", "features": []}
    tolerance = rules_of.density_cell(bounds) / 20  # well under a density cell: invisible on the screen
    rows = session.execute(
        text(
            f"""SELECT u.code, v.name, u.level,
                       ST_AsGeoJSON(ST_SimplifyPreserveTopology(v.geom, :tol), 5) AS geometry
                FROM units u JOIN unit_versions v USING (code)
                WHERE {CURRENT} AND (u.parent_code = :code
                      OR (u.code = :code AND NOT EXISTS (
                          SELECT 1 FROM units k JOIN unit_versions w ON w.code = k.code
                          WHERE k.parent_code = :code AND w.valid_to IS NULL)))
                ORDER BY u.code"""
        ),
        {"code": unit, "tol": tolerance},
    ).all()
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": r.code,
                "properties": {"code": r.code, "name": r.name, "level": r.level},
                "geometry": json.loads(r.geometry),
            }
            for r in rows
        ],
    }


def dashboard(
    session: Session, rules: Rules, unit: str, now: datetime | None = None
) -> dict[str, Any] | None:
    """Everything the dashboard shows for a current unit (None when there is no such unit)."""
    ref = unit_ref(session, unit)
    if ref is None:
        return None
    now = (now or datetime.now(SHANGHAI)).astimezone(SHANGHAI)
    spans = rules_of.periods(now)
    today = statistics(session, unit, spans["today"].start, spans["today"].end)
    month = statistics(session, unit, spans["month"].start, spans["month"].end)
    return {
        "unit": ref,
        "now": now,
        "today": period_figures(today),
        "month": period_figures(month),
        "open_now": case_count(session, rules, unit),
        "overdue_now": case_count(session, rules, unit, overdue=True),
        "month_stats": month,
        "ranking": ranking(session, rules, unit, spans["month"]),
        "trend": trend(session, unit, now),
        "top_categories": top_categories(session, rules, unit, spans["month"]),
        "density": {**density(session, unit, spans["trend"]), "from": spans["trend"].start, "to": now},
    }
