"""Reading cases: the list, one case, many cases at once, a photo, the queue, the statistics.

The API, Open311, the workbench and the task page read cases through these functions, so that a
page and the JSON answer of the same data come from one place. Reads record nothing; showing a
reporter's personal data is audited by services.cases.show_case.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from access.roles import User
from cases.filters import CaseFilter, QueueFilter
from cases.periods import period_of
from cases.rules import Rules
from store import case_queue, mapdata, users
from store import cases as store
from store.case_stats import statistics
from store.custom_plans import custom_plans

STATS_PERIOD = timedelta(days=30)  # /stats without dates: the last 30 days

__all__ = ["CaseFilter", "QueueFilter"]  # the filters the readers take (cases.filters)


def list_cases(session: Session, f: CaseFilter, rules: Rules) -> tuple[int, list[dict[str, Any]]]:
    """Cases matching the filter, newest first: (total count, one page of summaries)."""
    with custom_plans(session):  # a unit's prefix and the statuses pick the indexes (store.custom_plans)
        return store.list_cases(session, f, rules)


def case_detail(session: Session, case_id: int, rules: Rules, *, entitled: bool = False) -> dict[str, Any]:
    """One case's detail (reporter masked unless `entitled`); NotFound if there is none."""
    return store.case_detail(session, case_id, rules, entitled=entitled)


def case_details(session: Session, entitled: Mapping[int, bool], rules: Rules) -> dict[int, dict[str, Any]]:
    """Many cases' details in one statement, by id (those that exist); each case's reporter
    unmasked when its `entitled` value says so."""
    rows = store.detail_rows(session, list(entitled), rules) if entitled else {}
    return {i: store.detail_of(rows[i], rules, entitled=e) for i, e in entitled.items() if i in rows}


def photo(session: Session, case_id: int, seq: int) -> tuple[str, bytes]:
    """One stored photo of a case: (content type, bytes); NotFound if there is none."""
    return store.photo(session, case_id, seq)


def own_unit(user: User | None, unit: str | None) -> str | None:
    """The unit asked for, else the user's own (None: the whole county)."""
    return unit or (user.unit_code if user is not None and user.unit_code else None)


def case_statistics(
    session: Session, user: User | None, unit: str | None, start: datetime | None, end: datetime | None,
    now: datetime,
) -> dict[str, Any]:
    """GET /stats: a unit's performance (default: the user's) over [start, end) (default: the last
    30 days up to `now`)."""  # fmt: skip
    since, until = period_of(start, end, now, STATS_PERIOD)
    return statistics(session, own_unit(user, unit), since, until)


def queue_page(session: Session, f: QueueFilter, rules: Rules) -> case_queue.QueuePage:
    """One page of the dispatcher's queue with the counts per status group."""
    return case_queue.queue_page(session, f, rules)


def export_queue(
    session: Session, f: QueueFilter, rules: Rules, *, viewer: User | None, entitled: bool, query: str,
    ip: str | None,
) -> list[dict[str, Any]]:
    """Every case of the filtered queue for a download (reporters unmasked when `entitled`), the
    export recorded in the audit log (who, the filter's `query`, how many rows, personal data or not)."""
    cases = list(case_queue.export_rows(session, f, rules, entitled=entitled))
    actor = viewer.username if viewer is not None else "public"
    record_export(session, actor, query, len(cases), personal=entitled, ip=ip)
    return cases


def desk_queue(session: Session, f: QueueFilter, rules: Rules) -> tuple[case_queue.QueuePage, dict[str, str]]:
    """The workbench's page of the queue, and the names of the grids and units its cases are in."""
    found = case_queue.queue_page(session, f, rules)
    codes = [c["grid_code"] for c in found.items] + [c["unit_code"] for c in found.items]
    return found, case_queue.unit_names(session, codes)


def unit_names(session: Session, codes: list[str | None]) -> dict[str, str]:
    """The current names of units by code (codes without a current unit left out)."""
    return case_queue.unit_names(session, codes)


def units_matching(session: Session, user: User | None, text: str) -> list[dict[str, Any]]:
    """Units of the user's jurisdiction whose code or name matches `text` (a target picker)."""
    found = mapdata.search_units(session, text) if text.strip() else []
    return [u for u in found if user is not None and user.covers(u["code"])]


EXPORT_AUDIT = "export"  # the audit log's action when cases leave the service as a file


def record_export(
    session: Session, actor: str, query: str, rows: int, *, personal: bool, ip: str | None
) -> None:
    """An export of the queue in the audit log: who, which filter, how many rows, personal data or not."""
    details = {"query": query, "rows": rows, "personal_data": personal}
    users.audit(session, actor, EXPORT_AUDIT, "cases", details, ip)
