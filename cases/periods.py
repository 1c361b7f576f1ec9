"""The period a figure covers when the caller gives one end, both or neither (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta

from errors import Invalid


def period_of(
    start: datetime | None, end: datetime | None, now: datetime, default: timedelta
) -> tuple[datetime, datetime]:
    """[since, until): as given; `until` defaults to now and `since` to `default` before `until`.

    >>> from datetime import UTC
    >>> now = datetime(2026, 3, 31, tzinfo=UTC)
    >>> [f"{d:%m-%d}" for d in period_of(None, None, now, timedelta(days=30))]
    ['03-01', '03-31']
    """
    until = end or now
    since = start or until - default
    if since >= until:
        raise Invalid(f"from ({since:%Y-%m-%d %H:%M}) must be before to ({until:%Y-%m-%d %H:%M})")
    return since, until
