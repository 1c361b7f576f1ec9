"""Keeping the cases table's monthly partitions ahead of the clock: at the service's start and
every day (api.app), by `gridmap db partitions` for cron, and by intake when its month is missing."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Session

from cases.partitions import MONTHS_AHEAD, month_of, months_needed
from store import case_partitions as store
from store.cases import db_now


def ensure_partitions(session: Session, now: datetime | None = None, ahead: int = MONTHS_AHEAD) -> list[date]:
    """Make the partitions of now's month (the database's clock by default) and the `ahead` next
    ones that are missing, in the caller's transaction: the months made."""
    now = now or db_now(session)
    missing = months_needed(now, store.partition_months(session), ahead)
    return [m for m in missing if store.create_partition(session, m)]


def ensure_month(session: Session, at: datetime) -> bool:
    """Make the partition of the month `at` lies in if it is missing: made or not."""
    return store.create_partition(session, month_of(at))
