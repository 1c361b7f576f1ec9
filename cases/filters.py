"""What a list of cases can ask for: GET /cases' filter and the dispatcher's queue's (pure
descriptions; store.case_filters turns them into SQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from access.roles import User
from cases.vocabulary import OPEN_GROUPS


@dataclass(frozen=True)
class CaseFilter:
    """What GET /cases can ask for; None means no condition."""

    status: list[str] | None = None
    unit: str | None = None
    grid: str | None = None
    grids: list[str] | None = None  # any of these grids (a map's neighbourhood of grids)
    category: str | None = None
    overdue: bool | None = None
    light: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    reported_from: datetime | None = None
    reported_to: datetime | None = None
    source: str | None = None
    scope: User | None = None  # only cases this user may see
    limit: int = 200
    offset: int = 0


@dataclass(frozen=True)
class QueueFilter:
    """The queue's filters: GET /cases's (`cases`), status groups and a free-text search."""

    cases: CaseFilter
    groups: tuple[str, ...] = OPEN_GROUPS  # ignored when `cases.status` names statuses
    q: str | None = None  # part of the number, description or address
