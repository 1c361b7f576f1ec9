"""The cases' figures in the store: the daily roll-up (table `case_rollup`, kept by triggers of
migration 0019_case_rollup) and the few hours a period cuts off a day, read from the cases.

Both count a case for the unit holding it *now* (store.case_filters.in_unit_sql), the roll-up by
its keys (cases.case_figures.keys_of: units down to the community since 0022_case_rollup_keys; a
grid's figures are counted from its cases, store.case_direct), the hours by the same rule as the
cases list.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from cases.case_figures import FIGURES, Figures, Window, keys_of, zero
from cases.categories import STAGES
from cases.lifecycle import Rating, Tier
from store.case_filters import in_unit_sql

SUMS = ", ".join(f"sum(r.{f}) AS {f}" for f in FIGURES)

# How a history entry `h` adds to each figure: as the roll-up's triggers count it (0019).
HISTORY_SQL = {
    "reopened": "h.action = 'reopen'",
    **{f"done_{s}": f"h.on_time IS NOT NULL AND h.stage = '{s}'" for s in STAGES},
    **{f"on_time_{s}": f"h.on_time AND h.stage = '{s}'" for s in STAGES},
    **{f"tier_{t.value}": f"h.to_status = 'closed' AND h.tier = '{t.value}'" for t in Tier},
    **{f"rating_{r.value}": f"h.action = 'revisited' AND h.details->>'rating' = '{r.value}'" for r in Rating},
}
COUNTS = "(h.action IN ('reopen', 'revisited') OR h.on_time IS NOT NULL OR h.to_status = 'closed')"
IN_WINDOW = "{0} >= :w_start AND {0} < :w_end"
# A window's few entries find their case by id (an index probe a partition), not by a hash of all.
CASE_OF_ENTRY = "SELECT c.unit_code, c.grid_code FROM cases c WHERE c.id = h.case_id LIMIT 1"


def _figures(row: Any) -> Figures:
    return {f: int(getattr(row, f) or 0) for f in FIGURES}


def by_day(session: Session, unit: str | None, first: date, last: date) -> dict[date, Figures]:
    """The unit's figures of each Beijing day in [first, last) that has any."""
    rows = session.execute(
        text(f"SELECT r.day, {SUMS} FROM case_rollup r "
             "WHERE r.unit = ANY(:keys) AND r.day >= :first AND r.day < :last GROUP BY r.day"),
        {"keys": keys_of(unit), "first": first, "last": last},
    ).all()  # fmt: skip
    return {r.day: _figures(r) for r in rows}


def totals(
    session: Session, units: Sequence[str | None], first: date, last: date
) -> dict[str | None, Figures]:
    """Each unit's figures summed over the Beijing days [first, last)."""
    if not units:
        return {}
    pairs = [(unit or "", key) for unit in units for key in keys_of(unit)]
    rows = session.execute(
        text(f"""SELECT q.unit, {SUMS}
                 FROM unnest(CAST(:units AS text[]), CAST(:keys AS text[])) q(unit, key)
                 JOIN case_rollup r ON r.unit = q.key AND r.day >= :first AND r.day < :last
                 GROUP BY q.unit"""),
        {"units": [p[0] for p in pairs], "keys": [p[1] for p in pairs], "first": first, "last": last},
    ).all()  # fmt: skip
    found = {r.unit: _figures(r) for r in rows}
    return {unit: found.get(unit or "", zero()) for unit in units}


def members_sql(codes: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """SQL joining case `c` to each unit `u` of `codes` it belongs to (in_unit_sql's rule, the unit's
    prefix taken from the joined row; '' = every case). The codes are of one level (siblings)."""
    one, _ = in_unit_sql(codes[0], "member_prefix")  # the rule's shape is the same for siblings
    condition = one.replace(":member_prefix", "(u.code || '%')")
    return f"unnest(CAST(:member_codes AS text[])) AS u(code) ON {condition}", {"member_codes": list(codes)}


def in_window(session: Session, units: Sequence[str | None], window: Window) -> dict[str | None, Figures]:
    """Each unit's figures of events within the window's hours, read from the cases and history."""
    if not units:
        return {}
    member, params = members_sql([u or "" for u in units])
    params |= {"w_start": window.start, "w_end": window.end}
    received, closed = IN_WINDOW.format("c.reported_at"), IN_WINDOW.format("c.closed_at")
    cases = session.execute(
        text(f"""SELECT u.code, count(*) FILTER (WHERE {received}) AS received,
                        count(*) FILTER (WHERE {closed}) AS closed,
                        sum(round(extract(epoch FROM c.closed_at - c.reported_at) * 1000000)::bigint)
                            FILTER (WHERE {closed}) AS closed_us
                 FROM cases c JOIN {member} WHERE ({received}) OR ({closed}) GROUP BY u.code"""),
        params,
    ).all()  # fmt: skip
    figures = ", ".join(f"count(*) FILTER (WHERE {cond}) AS {f}" for f, cond in HISTORY_SQL.items())
    history = session.execute(
        text(f"""SELECT u.code, {figures}
                 FROM case_history h CROSS JOIN LATERAL ({CASE_OF_ENTRY}) c JOIN {member}
                 WHERE {IN_WINDOW.format("h.at")} AND {COUNTS} GROUP BY u.code"""),
        params,
    ).all()  # fmt: skip
    found: dict[str, Figures] = {}
    for row in [*cases, *history]:
        part = found.setdefault(row.code, zero())
        for f, value in row._mapping.items():
            if f != "code":
                part[f] += int(value or 0)
    return {unit: found.get(unit or "", zero()) for unit in units}


def rebuild(session: Session) -> None:
    """Make the roll-up again from every stored case and history entry (after a bulk load that
    bypassed the triggers, e.g. COPY with session_replication_role = replica)."""
    session.execute(text("SELECT case_rollup_rebuild()"))


def received_total(session: Session) -> tuple[int, int]:
    """(cases received by the roll-up, cases stored): equal unless a load bypassed the triggers."""
    row = session.execute(
        text("SELECT (SELECT coalesce(sum(received), 0) FROM case_rollup WHERE unit = '') AS rolled, "
             "(SELECT count(*) FROM cases) AS stored")
    ).one()  # fmt: skip
    return int(row.rolled), int(row.stored)
