"""What a request may carry, said once: text without NUL, integers PostgreSQL's bigint holds, dates
in the calendar the service computes with. Routes use these types and checks; docs/errors.md lists
the answers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, TypeVar

from fastapi import Query

from api.errors import InvalidParameter

# PostgreSQL text cannot hold U+0000, and no report, name or search needs it.
NUL_REFUSED = "text may not contain NUL characters (U+0000, %00, \\u0000)"

BIGINT_MAX = 2**63 - 1  # the largest offset or id PostgreSQL compares with a bigint

# Dates far outside any case's or grid's life: the bounds keep every date the service adds a window
# to (30 days of statistics, 90 days of Open311 requests, a day for an end date) inside Python's
# and PostgreSQL's calendars, whatever zone offset the client gives.
FIRST_YEAR, LAST_YEAR = 1900, 2999

Offset = Annotated[int, Query(ge=0, le=BIGINT_MAX, description="How many to skip")]

When = TypeVar("When", date, datetime)


def in_calendar(name: str, value: When) -> When:
    """`value` if its year is one the service computes with, else InvalidParameter naming `name`."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise InvalidParameter(
            f"{name}={value.isoformat()} is out of range: give a date between "
            f"{FIRST_YEAR}-01-01 and {LAST_YEAR}-12-31"
        )
    return value
