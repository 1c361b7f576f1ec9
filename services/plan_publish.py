"""Publishing a draft plan, and its rehearsal, the impact: one use case each, the API's and the CLI's.

Load the draft (services.plans), compute the publication (geo.plan_publication), write it through
the store (store.plan_publish) and record the audit entry, in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from geo import geojson
from geo import plan_publication as publication
from geo.plan_impact import transfers
from geo.plan_validation import ERROR
from geo.plans import PlanConflict, PlanInvalid
from geo.settings import Settings
from services import tile_precompute
from services.case_redraw import moved_cases, reassign_after_redraw
from services.plans import Draft, conflicts, draft_row, load_draft, problems
from store import plan_publish as store
from store import users
from store.plans import (
    current_versions,
    in_transaction,
    now,
    plan_row,
    plan_summary,
    rehearsal,
)


def publish(
    session: Session, plan_id: int, settings: Settings, *, actor: str, ip: str | None = None
) -> dict[str, Any]:
    """Apply a draft in the caller's transaction, all of it or (on any error) none of it; audited.

    Conflicts are detected under locks: the plan's row, then its unit's current version (which
    serialises publishes below one unit), then the current versions of every unit the draft
    touches, in code order (no deadlocks between publishes); each must still be the version the
    draft started from. A unit changed meanwhile is a PlanConflict naming it and the plan that
    changed it; errors in the draft are PlanInvalid; nothing is written before both checks pass.
    """
    plan = draft_row(session, plan_id, lock=True)
    store.lock_unit(session, plan.unit_code)
    draft = load_draft(session, plan_id)
    locked = store.lock_versions(session, draft.touched)
    draft.versions = {**draft.versions, **{c: locked.get(c) for c in draft.touched}}
    _refuse_conflicts(session, draft)
    errors = [p for p in problems(session, draft, settings) if p.severity == ERROR]
    if errors:
        raise PlanInvalid(f"plan {plan_id} has {len(errors)} problem(s); GET its validation for each", errors)

    at = now(session)
    created, changed, retired = _write(session, draft, at)
    tile_precompute.refresh(session)  # the map's simplified outlines follow the new boundaries
    moves = [(row.id, row.reported_at, answer) for row, answer in _moved_cases(session, draft, settings)]
    cases = reassign_after_redraw(session, moves, actor=actor, plan_id=plan_id, now=at)
    cells, staff = _people_moves(session, draft)
    store.relink_people(session, cells, staff)
    store.mark_published(session, plan_id, at, actor)
    result = {
        "plan": plan_summary(plan_row(session, plan_id)),
        "created": created,
        "changed": changed,
        "retired": retired,
        "cases": cases,
        "party_cells": cells,
        "staff": staff,
    }
    users.audit(session, actor, "plan_publish", f"plan {plan_id}", publication.audit_summary(result), ip)
    return result


def _refuse_conflicts(session: Session, draft: Draft) -> None:
    found = conflicts(session, draft)
    if found:
        raise PlanConflict(publication.conflict_message(draft.plan.id, found), found)


def _write(session: Session, draft: Draft, at: datetime) -> tuple[list[str], list[str], list[str]]:
    """The publication's unit versions and the plan's record of them."""
    plan_id = draft.plan.id
    created, changed, retired = store.write_units(
        session, plan_id, publication.publication(plan_id, draft.base, draft.state), at
    )
    new = current_versions(session, created + changed)
    rows = publication.change_rows(created, changed, retired, draft.versions, new)
    store.record_changes(session, plan_id, rows, retired, at)
    return created, changed, retired


def _moved_cases(session: Session, draft: Draft, settings: Settings) -> list[tuple[Row, Any]]:
    """Open cases whose responsible grid differs under the applied draft: (case row, new assignment).

    Candidates are open cases on a unit the draft touches, or within the snap tolerance of any
    area it changes; all are assigned again at once by the rule in PostGIS (store.locate_many)
    as the session now sees the units.
    """
    codes, area = publication.case_search_area(
        draft.base, draft.state, draft.touched, settings.snap_tolerance_m
    )
    return moved_cases(session, codes, area, tolerance_m=settings.snap_tolerance_m)


def _people_moves(session: Session, draft: Draft) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    cells, staff = store.people_of(session, sorted(draft.base), draft.root.code)
    return publication.people_moves(draft.state, cells, staff)


# ---------------------------------------------------------------- impact


def impact(session: Session, plan_id: int, settings: Settings) -> dict[str, Any]:
    """What changes hands: per unit before/after, the changed areas, the cases, cells and staff that move."""
    with in_transaction(session) as session:
        return _impact(session, plan_id, settings)


def _impact(session: Session, plan_id: int, settings: Settings) -> dict[str, Any]:
    draft = load_draft(session, plan_id)
    _refuse_conflicts(session, draft)
    with rehearsal(session):
        store.write_units(
            session, plan_id, publication.publication(plan_id, draft.base, draft.state), now(session)
        )
        cases = [_case_move(r, a) for r, a in _moved_cases(session, draft, settings)]
    cells, staff = _people_moves(session, draft)
    codes = publication.impact_codes(draft.base, draft.state, cells, staff)
    moves = {"cases": cases, "party_cells": cells, "staff": staff}
    units = publication.unit_impact(
        draft.base,
        draft.state,
        moves,
        store.open_cases_by_grid(session, codes),
        store.people_counts(session, codes),
    )
    return {
        "plan": plan_summary(draft.plan),
        "note": publication.AREA_NOTE,
        "units": units,
        "transfers": _transfers_geojson(draft),
        **moves,
    }


def _transfers_geojson(draft: Draft) -> dict[str, Any]:
    return geojson.feature_collection(
        geojson.feature(
            t.geometry,
            {
                "from": t.from_code,
                "to": t.to_code,
                "area_m2": round(t.area_m2, 1),
                "households": round(t.households, 1),
                "population": round(t.population, 1),
                "estimated": True,
            },
        )
        for t in transfers(draft.base, draft.state)
    )


def _case_move(row: Row, answer: Any) -> dict[str, Any]:
    grid = answer.grid
    return {
        "id": row.id,
        "number": row.number,
        "status": row.status,
        "lon": geojson.coordinate(row.lon),  # the one precision rule, as every case answer
        "lat": geojson.coordinate(row.lat),
        "from": {"grid": row.grid_code, "version": row.grid_version},
        "to": {"grid": grid.code if grid else None, "version": grid.version if grid else None},
        "assign_status": answer.status,
        "explanation": answer.explanation,
    }
