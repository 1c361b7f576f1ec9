"""What the coverage refresh after a publish reads: the codes plans changed, and the plans published
since a moment (the background job's high-water mark)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session


def plan_codes(session: Session, plan_ids: Sequence[int]) -> list[str]:
    """The codes the plans created, changed or retired (plan_changes), in order."""
    return list(
        session.execute(
            text("SELECT DISTINCT code FROM plan_changes WHERE plan_id = ANY(:ids) ORDER BY code"),
            {"ids": list(plan_ids)},
        ).scalars()
    )


def plans_published_since(session: Session, since: datetime) -> list[tuple[int, datetime]]:
    """(id, published_at) of the plans published after `since`, oldest first."""
    rows = session.execute(
        text(
            """SELECT id, published_at FROM plans WHERE status = 'published' AND published_at > :since
               ORDER BY published_at, id"""
        ),
        {"since": since},
    ).all()
    return [(r.id, r.published_at) for r in rows]


def database_now(session: Session) -> datetime:
    """The database's clock (what published_at is written with)."""
    return session.execute(text("SELECT now()")).scalar_one()


def take_turn(session: Session) -> bool:
    """True for the one process that refreshes now (a transaction-scoped advisory lock): servers
    running the background job side by side do not save each report twice."""
    return session.execute(
        text("SELECT pg_try_advisory_xact_lock(hashtext('gridmap.coverage_refresh'))")
    ).scalar_one()
