"""The dispatcher's queue as query parameters (GET /queue and the workbench page read the same)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Query

from api.access import CurrentUser
from api.deps import parse_at
from api.errors import InvalidParameter
from cases.lifecycle import CaseStatus, Source
from cases.vocabulary import GROUPS_BY_KEY, OPEN_GROUPS, STATUS_GROUPS
from geo.codes import CODE_PATTERN
from services.case_reads import CaseFilter, QueueFilter

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def _blank(value: str | None) -> str | None:
    """A form's empty field means no condition."""
    return value.strip() if value and value.strip() else None


def _one_of(name: str, value: str | None, allowed: list[str]) -> str | None:
    value = _blank(value)
    if value is not None and value not in allowed:
        raise InvalidParameter(f"{name}={value!r} is not one of {', '.join(allowed)}")
    return value


def _matching(name: str, value: str | None, pattern: str, what: str) -> str | None:
    value = _blank(value)
    if value is not None and not re.fullmatch(pattern, value):
        raise InvalidParameter(f"{name}={value!r} is not {what}")
    return value


def queue_filter(
    user: CurrentUser,
    status: Annotated[list[str] | None, Query(description="Statuses (override `group`)")] = None,
    group: Annotated[
        list[str] | None, Query(description=f"Status groups: {', '.join(g.key for g in STATUS_GROUPS)}")
    ] = None,
    light: Annotated[str | None, Query(description="green, yellow or red")] = None,
    overdue: Annotated[str | None, Query(description="true: only overdue cases")] = None,
    category: Annotated[str | None, Query(description="Top class (2 digits) or subclass (4)")] = None,
    unit: Annotated[str | None, Query(description="A unit and everything below it")] = None,
    source: Annotated[str | None, Query()] = None,
    reported_from: Annotated[
        str | None, Query(alias="from", description="Reported on or after (date)")
    ] = None,
    reported_to: Annotated[str | None, Query(alias="to", description="Reported before (date)")] = None,
    q: Annotated[
        str | None, Query(max_length=100, description="Part of the number, description or address")
    ] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = PAGE_SIZE,
) -> QueueFilter:
    """The queue's filters from query parameters (a page's form sends empty fields: no condition)."""
    statuses = [s for s in (status or []) if _blank(s)]
    for s in statuses:
        _one_of("status", s, [c.value for c in CaseStatus])
    groups = [g for g in (group or []) if _blank(g)]
    for g in groups:
        _one_of("group", g, list(GROUPS_BY_KEY))
    cases = CaseFilter(
        scope=user,
        status=statuses or None,
        unit=_matching("unit", unit, CODE_PATTERN, "a unit code"),
        category=_matching("category", category, r"[0-9]{2}|[0-9]{4}", "a category code (2 or 4 digits)"),
        source=_one_of("source", source, [s.value for s in Source]),
        overdue=True if _blank(overdue) in ("true", "on", "1") else None,
        light=_one_of("light", light, ["green", "yellow", "red"]),
        reported_from=parse_at(_blank(reported_from)),
        reported_to=parse_at(_blank(reported_to)),
        limit=size,
        offset=(page - 1) * size,
    )
    return QueueFilter(cases=cases, groups=tuple(groups) or OPEN_GROUPS, q=_blank(q))


QueueFilterDep = Annotated[QueueFilter, Depends(queue_filter)]


def page_of(f: QueueFilter) -> int:
    """The 1-based page number the filter's offset stands for."""
    return f.cases.offset // f.cases.limit + 1
