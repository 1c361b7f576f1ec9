"""The command dashboard's (指挥大屏) rules: its periods, and the figures it derives from /stats.

Pure functions: the store (store/dashboard.py) reads the numbers, these say how they combine, so a
figure is defined once and the page only draws what it is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from cases.worktime import SHANGHAI

TREND_DAYS = 30  # the trend chart and the density map cover the last 30 days, today included
TOP_CATEGORIES = 10
DENSITY_CELLS = 60  # cells across the longer side of the unit's extent


@dataclass(frozen=True)
class Period:
    """[start, end) in China time."""

    start: datetime
    end: datetime


def day_start(day: date) -> datetime:
    """Midnight of a day in China time (days and months are counted as a Chinese office counts them)."""
    return datetime.combine(day, time(0), tzinfo=SHANGHAI)


def periods(now: datetime) -> dict[str, Period]:
    """Today (since midnight), this month (since the 1st) and the trend's 30 days, each up to `now`."""
    local = now.astimezone(SHANGHAI)
    today = local.date()
    return {
        "today": Period(day_start(today), local),
        "month": Period(day_start(today.replace(day=1)), local),
        "trend": Period(day_start(today - timedelta(days=TREND_DAYS - 1)), local),
    }


def trend_days(now: datetime) -> list[date]:
    """The trend's days, oldest first, today last."""
    today = now.astimezone(SHANGHAI).date()
    return [today - timedelta(days=n) for n in range(TREND_DAYS - 1, -1, -1)]


def rate(part: int, whole: int) -> float | None:
    """A share rounded as /stats rounds its rates; None when there is nothing to divide."""
    return round(part / whole, 4) if whole else None


def on_time_overall(on_time: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """All stages together: stages completed in the period, how many within their limit, the rate.

    `on_time` is /stats' `on_time` (per stage: done, on_time). Late = done − on time: stage
    deadlines missed in the period (按期率 counts stages, as the per-stage rates do).
    """
    done = sum(s["done"] for s in on_time.values())
    kept = sum(s["on_time"] for s in on_time.values())
    return {"done": done, "on_time": kept, "late": done - kept, "rate": rate(kept, done)}


def ranking_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """Best first: highest on-time rate (a unit with nothing completed last), fewest overdue, code."""
    no_rate = row["on_time_rate"] is None
    return (no_rate, -(row["on_time_rate"] or 0.0), row["overdue_now"], row["code"])


def density_cell(bounds: tuple[float, float, float, float]) -> float:
    """Side of a density cell in degrees: DENSITY_CELLS across the longer side of the extent."""
    minx, miny, maxx, maxy = bounds
    return max(maxx - minx, maxy - miny, 1e-4) / DENSITY_CELLS


def period_figures(stats: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of one /stats answer: received, closed, stage deadlines kept and missed."""
    overall = on_time_overall(stats["on_time"])
    return {
        "from": stats["from"],
        "to": stats["to"],
        "received": stats["received"],
        "closed": stats["closed"],
        "late_stages": overall["late"],
        "on_time": overall,
    }
