"""Open cases a published redraw moved to another grid: each decided by the pure rule
(cases.workflow.redraw: the new assignment, and the holder with it while the case is where the
rule put it), all stored at once (store.case_redraw), in the publish's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import shapely
from sqlalchemy import Row
from sqlalchemy.orm import Session

from cases.redraw import moved
from cases.workflow import redraw
from geo.assignment import Assignment
from store import case_redraw as store
from store.locate_many import locate_table, responsible_grids


def moved_cases(
    session: Session, codes: list[str], area: shapely.Geometry | None, *, tolerance_m: float
) -> list[tuple[Row, Assignment]]:
    """Open cases on one of `codes` or inside `area` whose responsible grid is another now, each
    with its new assignment (the rule as the session sees the units), by id.

    Set-based: every candidate's grid in one statement, then the full answer (chain of units,
    explanation) of those that move in one more; cases.redraw decides which move.
    """
    store.collect_candidates(session, codes, area)
    rows = store.candidates(session)
    on = {row.id: row.grid_code for row in rows}
    moving = moved(on, responsible_grids(session, store.CANDIDATES, tolerance_m=tolerance_m))
    if not moving:
        return []
    store.collect_moving(session, moving)
    answers = locate_table(session, store.MOVING, tolerance_m=tolerance_m)
    # Decided again on the full answers: the one the case will hold (the two agree; tested).
    grids = {case_id: a.grid.code if a.grid else None for case_id, a in answers.items()}
    confirmed = set(moved({i: on[i] for i in moving}, grids))
    return [(row, answers[row.id]) for row in rows if row.id in confirmed]


def reassign_after_redraw(
    session: Session,
    moves: list[tuple[int, datetime, Assignment]],
    *,
    actor: str,
    plan_id: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """Give each (case id, reported_at, new assignment) its redraw and say so in its history: each
    move as recorded in the history's details, in the order given."""
    cases = store.cases_for_update(session, [(case_id, reported_at) for case_id, reported_at, _ in moves])
    decided = []
    for case_id, _, assignment in moves:
        case, reported_at = cases[case_id]
        decided.append((case_id, reported_at, redraw(case, assignment, actor=actor, plan_id=plan_id)))
    store.write_redraws(session, decided, now)
    return [
        {
            "id": case_id,
            "number": cases[case_id][0].number,
            "status": change.status.value,
            **change.entry.details,
        }
        for case_id, _, change in decided
    ]
