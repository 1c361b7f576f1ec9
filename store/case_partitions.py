"""The cases table's monthly partitions in the store: which exist, and making one.

Which months to make is decided by cases.partitions (services.case_partitions calls both).
"""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import text
from sqlalchemy.orm import Session

from cases.partitions import month_bounds, partition_name

# Makers of partitions (the daily step of every server process, an intake that found its month
# missing) take this lock first, so two of them never race to create the same table.
PARTITION_LOCK = 0x63617365  # "case"
NAME = re.compile(r"^cases_(\d{4})_(\d{2})$")


def partition_months(session: Session) -> set[date]:
    """The months that have a partition of `cases`."""
    names = session.execute(
        text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
             "WHERE i.inhparent = 'cases'::regclass")
    ).scalars()  # fmt: skip
    return {date(int(m[1]), int(m[2]), 1) for n in names if (m := NAME.match(n))}


def create_partition(session: Session, month: date) -> bool:
    """Make the partition of `month` unless it exists (in the caller's transaction): made or not."""
    session.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": PARTITION_LOCK})
    name = partition_name(month)
    if session.execute(text("SELECT to_regclass(:name)"), {"name": name}).scalar() is not None:
        return False
    start, end = month_bounds(month)
    # DDL takes no bind parameters: the name and bounds are made here, not given by a caller.
    session.execute(
        text(f"CREATE TABLE {name} PARTITION OF cases FOR VALUES FROM ('{start.isoformat()}') "
             f"TO ('{end.isoformat()}')")
    )  # fmt: skip
    return True


def partition_of_case(session: Session, case_id: int) -> str | None:
    """The partition a stored case lies in (None: no such case)."""
    return session.execute(
        text("SELECT tableoid::regclass::text FROM cases WHERE id = :id"), {"id": case_id}
    ).scalar()
