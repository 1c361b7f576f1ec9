"""The oracle of the roll-up tests: /stats counted directly from the cases and their history, as
store/case_stats.py did before the roll-up (0019): every query joins the history to every case to
test the case's current unit (19 s for a county's year at 1 M cases on a busy machine).

A case belongs to a unit when the unit's code prefixes the case's responsible unit or its grid
(codes nest). Figures: received, closed, on-time rate per stage, the tier each closed case was
resolved at ("small matters stay in the village"), average handling time, satisfaction, rework.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from cases.categories import STAGES
from cases.lifecycle import Rating, Tier
from store.case_filters import in_unit_sql

# "Small matters stay in the village": resolved without leaving the grid or community.
LOCAL_TIERS = (Tier.GRID, Tier.COMMUNITY)

# What counts in the period [:start, :end), for case `c` and history entry `h`; shared with the
# per-child counts of the dashboard (store.dashboard), so that both count alike.
RECEIVED = "c.reported_at >= :start AND c.reported_at < :end"
CLOSED = "c.closed_at >= :start AND c.closed_at < :end"
STAGE_DONE = "h.on_time IS NOT NULL AND h.at >= :start AND h.at < :end"


def statistics(session: Session, unit: str | None, start: datetime, end: datetime) -> dict[str, Any]:
    """Figures for cases of `unit` (all when None) over [start, end)."""
    in_unit, params = in_unit_sql(unit)
    params |= {"start": start, "end": end}
    return {
        "unit": unit,
        "from": start,
        "to": end,
        **_volumes(session, in_unit, params),
        "on_time": _on_time(session, in_unit, params),
        "resolved_by_tier": _by_tier(session, in_unit, params),
        "satisfaction": _satisfaction(session, in_unit, params),
    }


def _volumes(session: Session, in_unit: str, params: dict[str, Any]) -> dict[str, Any]:
    row = session.execute(
        text(
            f"""SELECT
                  count(*) FILTER (WHERE {RECEIVED}) AS received,
                  count(*) FILTER (WHERE {CLOSED}) AS closed,
                  avg(extract(epoch FROM c.closed_at - c.reported_at) / 3600)
                      FILTER (WHERE {CLOSED}) AS avg_hours
                FROM cases c WHERE {in_unit}"""
        ),
        params,
    ).one()
    rework = session.execute(
        text(
            f"""SELECT count(*) FROM case_history h JOIN cases c ON c.id = h.case_id
                WHERE {in_unit} AND h.action = 'reopen' AND h.at >= :start AND h.at < :end"""
        ),
        params,
    ).scalar_one()
    hours = round(float(row.avg_hours), 2) if row.avg_hours is not None else None
    return {"received": row.received, "closed": row.closed, "avg_handling_hours": hours, "reopened": rework}


def _on_time(session: Session, in_unit: str, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per stage: how many stages were completed in the period, and how many within their limit."""
    rows = session.execute(
        text(
            f"""SELECT h.stage, count(*) AS done, count(*) FILTER (WHERE h.on_time) AS on_time
                FROM case_history h JOIN cases c ON c.id = h.case_id
                WHERE {in_unit} AND {STAGE_DONE}
                GROUP BY h.stage"""
        ),
        params,
    ).all()
    by_stage = {r.stage: r for r in rows}
    return {
        stage: {
            "done": by_stage[stage].done if stage in by_stage else 0,
            "on_time": by_stage[stage].on_time if stage in by_stage else 0,
            "rate": _rate(by_stage[stage].on_time, by_stage[stage].done) if stage in by_stage else None,
        }
        for stage in STAGES
    }


def _by_tier(session: Session, in_unit: str, params: dict[str, Any]) -> dict[str, Any]:
    """The tier responsible when each case was closed in the period, and the share kept local."""
    rows = session.execute(
        text(
            f"""SELECT h.tier, count(*) AS n FROM case_history h JOIN cases c ON c.id = h.case_id
                WHERE {in_unit} AND h.to_status = 'closed' AND h.at >= :start AND h.at < :end
                GROUP BY h.tier"""
        ),
        params,
    ).all()
    counts = {tier.value: 0 for tier in Tier} | {r.tier: r.n for r in rows}
    total = sum(counts.values())
    local = sum(counts[t.value] for t in LOCAL_TIERS)
    return {
        "counts": counts,
        "shares": {t: _rate(n, total) for t, n in counts.items()},
        "local_share": _rate(local, total),
    }


def _satisfaction(session: Session, in_unit: str, params: dict[str, Any]) -> dict[str, Any]:
    """Revisit ratings in the period; satisfied and basically satisfied count as satisfied."""
    rows = session.execute(
        text(
            f"""SELECT h.details->>'rating' AS rating, count(*) AS n
                FROM case_history h JOIN cases c ON c.id = h.case_id
                WHERE {in_unit} AND h.action = 'revisited' AND h.at >= :start AND h.at < :end
                GROUP BY 1"""
        ),
        params,
    ).all()
    counts = {r.value: 0 for r in Rating} | {r.rating: r.n for r in rows}
    pleased = counts[Rating.SATISFIED] + counts[Rating.BASICALLY_SATISFIED]
    return {"counts": counts, "rate": _rate(pleased, sum(counts.values()))}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
