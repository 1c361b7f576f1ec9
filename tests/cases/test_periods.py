"""The period a figure covers (cases.periods): as given, one end defaulted, or the last days up to now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cases.periods import period_of
from errors import Invalid

NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def test_without_dates_the_period_is_the_default_length_up_to_now():
    assert period_of(None, None, NOW, WEEK) == (datetime(2026, 3, 24, 12, 0, tzinfo=UTC), NOW)


def test_an_end_alone_counts_back_from_the_end_and_a_start_alone_runs_to_now():
    end = datetime(2026, 2, 10, tzinfo=UTC)
    assert period_of(None, end, NOW, WEEK) == (datetime(2026, 2, 3, tzinfo=UTC), end)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert period_of(start, None, NOW, WEEK) == (start, NOW)


def test_a_start_not_before_the_end_is_refused_with_both_dates():
    with pytest.raises(Invalid, match=r"from \(2026-03-31 12:00\) must be before to \(2026-03-31 12:00\)"):
        period_of(NOW, NOW, NOW, WEEK)
