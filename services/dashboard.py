"""The command dashboard (指挥大屏): which unit it shows, every figure of it, and the outlines the
case density is drawn on.

Every period figure is /stats' (store.case_stats.statistics) for the same unit and period, and
every "overdue now" count is GET /cases': the dashboard calls those functions rather than
restating them, so its numbers agree with the API by construction (store/dashboard.py counts
what /stats has no figure for; cases/dashboard.py says how the figures combine).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from access.roles import User
from cases import dashboard as rules_of
from cases.rules import Rules
from cases.worktime import SHANGHAI
from errors import NotFound
from geo import geojson
from services.case_reads import own_unit
from store import dashboard as store
from store import mapdata
from store.case_stats import statistics
from store.custom_plans import custom_plans


def dashboard_unit(session: Session, user: User | None, unit: str | None) -> str:
    """The unit asked for (the permission check has refused one outside the user's jurisdiction),
    else the user's own, else the county."""
    unit = own_unit(user, unit)
    if unit is None:
        tops = mapdata.top_units(session)
        if not tops:
            raise NotFound("no units are loaded yet: import a county first")
        unit = tops[0]
    return unit


def _current_unit(session: Session, code: str) -> dict[str, Any]:
    ref = store.unit_ref(session, code)
    if ref is None:
        raise NotFound(f"no current unit with code {code}")
    return ref


def dashboard(
    session: Session, rules: Rules, user: User | None, unit: str | None, now: datetime | None = None
) -> dict[str, Any]:
    """Every figure of the dashboard for the unit asked for (default: the user's, else the county):
    today and this month (/stats), open and overdue now, the ranking of its children, the 30-day
    trend, the top categories and the case density; NotFound when there is no such current unit."""
    code = dashboard_unit(session, user, unit)
    ref = _current_unit(session, code)
    now = (now or datetime.now(SHANGHAI)).astimezone(SHANGHAI)
    spans = rules_of.periods(now)
    # The open-case counts and the ranking read the cases by a unit's prefix and open statuses:
    # planned for their parameters they use the open-case indexes (at 10 M cases the dashboard
    # took 7.9 s with generic plans: docs/benchmarks.md), as the case list does (store.custom_plans).
    with custom_plans(session):
        today = statistics(session, code, spans["today"].start, spans["today"].end)
        month = statistics(session, code, spans["month"].start, spans["month"].end)
        density = store.density(session, code, spans["trend"])
        return {
            "unit": ref,
            "now": now,
            "today": rules_of.period_figures(today),
            "month": rules_of.period_figures(month),
            "open_now": store.case_count(session, rules, code),
            "overdue_now": store.case_count(session, rules, code, overdue=True),
            "month_stats": month,
            "ranking": store.ranking(session, rules, code, spans["month"]),
            "trend": store.trend(session, code, now),
            "top_categories": store.top_categories(session, rules, code, spans["month"]),
            "density": {**density, "from": spans["trend"].start, "to": now},
        }


def outlines(session: Session, user: User | None, unit: str | None) -> dict[str, Any]:
    """The outlines the density is drawn on, as a FeatureCollection: the unit's children (or the
    unit itself, without children); NotFound when there is no such current unit."""
    code = dashboard_unit(session, user, unit)
    _current_unit(session, code)
    features = [
        geojson.feature(o.geometry, {"code": o.code, "name": o.name, "level": o.level}, id=o.code)
        for o in store.outlines(session, code)
    ]
    return geojson.feature_collection(features)
