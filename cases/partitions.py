"""The cases table's monthly partitions (pure): which month a report falls in, a month's bounds
and name, and which months must exist ahead of the clock.

Months are Beijing time's (Asia/Shanghai), as case numbers and statistics count them, so a month's
statistics read one partition. Partitions are made by services.case_partitions.
"""

from __future__ import annotations

from datetime import date, datetime

from cases.worktime import SHANGHAI

MONTHS_AHEAD = 3  # partitions made beyond the current month (the daily step keeps them ahead)


def month_of(at: datetime) -> date:
    """The first day of the Beijing-time month `at` falls in."""
    local = at.astimezone(SHANGHAI)
    return date(local.year, local.month, 1)


def next_month(month: date) -> date:
    """The first day of the month after `month`."""
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """The partition's range: from the month's first instant (Beijing time) to the next month's."""
    start = datetime(month.year, month.month, 1, tzinfo=SHANGHAI)
    end = next_month(month)
    return start, datetime(end.year, end.month, 1, tzinfo=SHANGHAI)


def partition_name(month: date) -> str:
    """The table holding the cases reported in `month`: cases_2026_12."""
    return f"cases_{month.year:04d}_{month.month:02d}"


def months_from(first: date, count: int) -> list[date]:
    """`count` months from `first` on."""
    months = [date(first.year, first.month, 1)]
    while len(months) < count:
        months.append(next_month(months[-1]))
    return months


def months_needed(now: datetime, existing: set[date], ahead: int = MONTHS_AHEAD) -> list[date]:
    """The months, from now's to `ahead` months on, that have no partition yet (oldest first)."""
    return [m for m in months_from(month_of(now), ahead + 1) if m not in existing]
