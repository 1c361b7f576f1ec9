"""The dispatcher's queue: cases under the filters of GET /cases plus status groups and free text,
overdue first then by due time, with a count per status group. Used by `GET /queue` (JSON), the
workbench page (`/desk`) and its CSV export.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from cases.filters import QueueFilter as QueueFilter  # the queue's filter: a pure description
from cases.model import reporter_view
from cases.vocabulary import STATUS_GROUPS, statuses_of_groups

# The shared WHERE clause of GET /cases (scope, status, unit, category, light, dates, …): one copy.
from store.case_filters import filter_sql
from store.cases import CASE_COLUMNS, Rules, case_summary, db_now

EXPORT_BATCH = 2000  # rows fetched at a time for an export


def _where(f: QueueFilter, *, with_status: bool = True) -> tuple[str, dict[str, Any]]:
    base = f.cases
    if not with_status:
        base = replace(base, status=None)
    elif not base.status:
        base = replace(base, status=statuses_of_groups(list(f.groups)))
    where, params = filter_sql(base)
    if f.q and f.q.strip():
        escaped = f.q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where += " AND (c.number ILIKE :q OR c.description ILIKE :q OR c.address ILIKE :q)"
        params["q"] = f"%{escaped}%"
    return where, params


# Overdue first, then the soonest due; cases without a clock (finished) last, newest first.
QUEUE_ORDER = """(c.stage_due_at IS NOT NULL AND c.stage_due_at < :now) DESC,
                 c.stage_due_at ASC NULLS LAST, c.reported_at DESC, c.id DESC"""


@dataclass(frozen=True)
class QueuePage:
    """One page of the queue, how many cases match, and the counts per status group."""

    total: int
    items: list[dict[str, Any]]
    counts: dict[str, int]  # every group's key, under every filter but the status


def queue_page(session: Session, f: QueueFilter, rules: Rules) -> QueuePage:
    """One page of the queue, overdue first then by due time, with the counts per status group.

    Two statements: the counts per status under every filter but the status (the total matching
    follows from them), and the page.
    """
    now = db_now(session)
    where, params = _where(f, with_status=False)
    rows = session.execute(
        text(f"SELECT c.status, count(*) AS n FROM cases c WHERE {where} GROUP BY c.status"),
        {**params, "now": now},
    ).all()
    by_status = {row.status: row.n for row in rows}
    wanted = f.cases.status or statuses_of_groups(list(f.groups))
    where, params = _where(f)
    page = session.execute(
        text(
            f"""SELECT {CASE_COLUMNS} FROM cases c WHERE {where}
                ORDER BY {QUEUE_ORDER} LIMIT :limit OFFSET :offset"""
        ),
        {**params, "now": now, "limit": f.cases.limit, "offset": f.cases.offset},
    ).all()
    counts = {g.key: sum(by_status.get(s.value, 0) for s in g.statuses) for g in STATUS_GROUPS}
    return QueuePage(
        total=sum(by_status.get(s, 0) for s in wanted),
        items=[case_summary(r, now, rules) for r in page],
        counts=counts,
    )


def export_rows(
    session: Session, f: QueueFilter, rules: Rules, *, entitled: bool
) -> Iterator[dict[str, Any]]:
    """Every case of the filtered queue in queue order, with the reporter as `entitled` may see it."""
    now = db_now(session)
    where, params = _where(f)
    params["now"] = now
    offset = 0
    while True:
        rows = session.execute(
            text(
                f"SELECT {CASE_COLUMNS} FROM cases c WHERE {where} ORDER BY {QUEUE_ORDER} LIMIT :n OFFSET :o"
            ),
            {**params, "n": EXPORT_BATCH, "o": offset},
        ).all()
        for row in rows:
            yield {
                **case_summary(row, now, rules),
                "reporter": reporter_view(row.reporter, entitled=entitled),
            }
        if len(rows) < EXPORT_BATCH:
            return
        offset += EXPORT_BATCH


def unit_names(session: Session, codes: list[str | None]) -> dict[str, str]:
    """Current names of units by code (for the rows and pages that show codes)."""
    wanted = sorted({c for c in codes if c})
    if not wanted:
        return {}
    rows = session.execute(
        text("SELECT code, name FROM unit_versions WHERE code = ANY(:codes) AND valid_to IS NULL"),
        {"codes": wanted},
    ).all()
    return {r.code: r.name for r in rows}
