"""The months of the cases table's partitions (cases.partitions): Beijing time, across a year's end."""

from __future__ import annotations

from datetime import UTC, date, datetime

from cases.partitions import month_bounds, month_of, months_needed, next_month, partition_name


def test_beijing_time_decides_the_month():
    assert month_of(datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC)) == date(2026, 12, 1)
    assert month_of(datetime(2026, 12, 31, 16, 0, 0, tzinfo=UTC)) == date(2027, 1, 1)  # 00:00 +08


def test_a_months_bounds_meet_the_next_months():
    start, end = month_bounds(date(2026, 12, 1))
    assert start == datetime(2026, 11, 30, 16, tzinfo=UTC)
    assert end == month_bounds(next_month(date(2026, 12, 1)))[0] == datetime(2026, 12, 31, 16, tzinfo=UTC)
    assert partition_name(date(2027, 1, 1)) == "cases_2027_01"


def test_the_months_needed_cross_the_years_end():
    now = datetime(2026, 11, 20, tzinfo=UTC)
    assert months_needed(now, set(), ahead=3) == [
        date(2026, 11, 1),
        date(2026, 12, 1),
        date(2027, 1, 1),
        date(2027, 2, 1),
    ]
    assert months_needed(now, {date(2026, 11, 1), date(2027, 1, 1)}, ahead=3) == [
        date(2026, 12, 1),
        date(2027, 2, 1),
    ]
