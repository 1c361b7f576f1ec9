"""Open cases a published redraw moved to another grid: each decided by the pure rule
(cases.workflow.redraw: the new assignment, and the holder with it while the case is where the
rule put it), all stored at once (store.case_redraw), in the publish's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from cases.workflow import redraw
from geo.assignment import Assignment
from store import case_redraw as store


def reassign_after_redraw(
    session: Session, moves: list[tuple[int, Assignment]], *, actor: str, plan_id: int, now: datetime
) -> list[dict[str, Any]]:
    """Give each (case id, new assignment) its redraw and say so in its history: each move as
    recorded in the history's details, in the order given."""
    cases = store.cases_for_update(session, [case_id for case_id, _ in moves])
    decided = []
    for case_id, assignment in moves:
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
