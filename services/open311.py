"""Open311's reads of cases: requests by id, a search in a window, and what each request shows
beyond the case (its last note, first photo, and who is responsible for it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from access.roles import User
from cases.filters import CaseFilter
from cases.lifecycle import Tier
from cases.rules import Rules
from services import case_reads
from store import case_extras
from store.units import units_at

COMMAND_CENTRE = "county command centre (unassigned queue)"  # who takes requests no grid covers


# What a service request shows beyond its case, by case id: last note, first photo's number, agency.
Extras = tuple[str | None, int | None, str]


@dataclass(frozen=True)
class RequestQuery:
    """What GET /requests asks: ids (the other filters then ignored), or codes, statuses and a window."""

    limit: int
    ids: list[int] | None = None
    codes: tuple[str | None, ...] = (None,)  # None: any category
    statuses: list[str] | None = None
    window: tuple[datetime, datetime | None] | None = None  # given when ids are not


def find_requests(
    session: Session, rules: Rules, query: RequestQuery, user: User | None
) -> list[tuple[dict[str, Any], Extras]]:
    """GET /requests: the cases asked for that the user may see, each with what it shows beyond itself."""
    if query.ids is not None or query.window is None:
        cases = requests_by_id(session, rules, query.ids or [], user)
    else:
        cases = search_requests(session, rules, query.codes, query.statuses, query.window, user, query.limit)
    return with_extras(session, rules, cases)


def request_of(session: Session, rules: Rules, case_id: int) -> list[tuple[dict[str, Any], Extras]]:
    """GET /requests/{id}: the one case (NotFound if none) with what it shows beyond itself."""
    return with_extras(session, rules, [case_reads.case_detail(session, case_id, rules)])


def with_extras(
    session: Session, rules: Rules, cases: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], Extras]]:
    """Each case paired with its extras (request_extras), in order."""
    extras = request_extras(session, rules, cases)
    return [(c, extras[c["id"]]) for c in cases]


def requests_by_id(session: Session, rules: Rules, ids: list[int], user: User | None) -> list[dict[str, Any]]:
    """The cases that exist among `ids` and the user may see, in the order asked (others left out)."""
    found = case_reads.case_details(session, dict.fromkeys(ids, False), rules)  # one statement for them all
    cases = [found[i] for i in ids if i in found]
    if user is None:
        return cases
    return [c for c in cases if user.may_see_case(c["unit_code"], c["grid_code"], c["department"])]


def search_requests(
    session: Session,
    rules: Rules,
    codes: Sequence[str | None],
    statuses: list[str] | None,
    window: tuple[datetime, datetime | None],
    user: User | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Cases reported in the window the user may see, of any of `codes`, newest first, at most `limit`."""
    since, until = window
    found: dict[int, dict[str, Any]] = {}
    for code in codes:
        f = CaseFilter(
            status=statuses, category=code, reported_from=since, reported_to=until, limit=limit, scope=user
        )
        found.update((c["id"], c) for c in case_reads.list_cases(session, f, rules)[1])
    newest = sorted(found.values(), key=lambda c: (c["reported_at"], c["id"]), reverse=True)
    return newest[:limit]


def request_extras(session: Session, rules: Rules, cases: list[dict[str, Any]]) -> dict[int, Extras]:
    """What each case shows as a service request beyond itself, by id: the last note of its
    history, the number of its first photo, and who is responsible for it."""
    notes = case_extras.notes_and_photos(session, [c["id"] for c in cases])
    responsible = agencies(session, rules, cases)
    return {c["id"]: (*notes[c["id"]], responsible[c["id"]]) for c in cases}


def agencies(session: Session, rules: Rules, cases: list[dict[str, Any]]) -> dict[int, str]:
    """Who is responsible for each case: the summoned department, else the unit's name and code."""
    units = units_at(session, {c["unit_code"] for c in cases if c["unit_code"]})
    names = {code: unit.name for code, unit in units.items()}
    return {c["id"]: agency_of(c, names, rules) for c in cases}


def agency_of(case: dict[str, Any], unit_names: dict[str, str], rules: Rules) -> str:
    """Who is responsible: the summoned department, else the unit's name and code."""
    if case["tier"] == Tier.DEPARTMENT and case["department"]:
        return rules.departments.get(case["department"], case["department"])
    code = case["unit_code"]
    if code is None:
        return COMMAND_CENTRE
    name = unit_names.get(code)
    return f"{name} ({code})" if name else code
