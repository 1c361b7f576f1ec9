"""Draft plans, the steps the API and the CLI share: open, edit, validate, read, abandon.

Each loads from the store (store.plans), decides with the pure plan functions (geo.plans,
geo.plan_edits, geo.plan_validation) and writes through the store; the caller commits. Impact and
publish are in services.plan_publish.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.orm import Session

from geo import coverage, geojson, plan_checks, plan_impact, plan_publication
from geo.codes import Level, level_of
from geo.plan_edits import apply_edit, replay
from geo.plan_validation import Problem, validate
from geo.plans import (
    Change,
    CodeTaken,
    Edit,
    EditError,
    PlanClosed,
    PlanConflict,
    PlanNotFound,
    PlanState,
    changes,
    geojson_geometry,
    unit_properties,
)
from geo.settings import Settings
from geo.validation import UnitFeature
from store import plan_history
from store import plans as store
from store import units as unit_store
from store.plans import DRAFT, PUBLISHED


@dataclass
class Draft:
    """A plan with its units before (current) and after (edits replayed, counts estimated)."""

    plan: Row
    root: UnitFeature
    base: dict[str, UnitFeature]
    versions: dict[str, int]  # current version of each unit in `base`
    state: PlanState  # after the edits, counts estimated
    edits: list[Row]
    touched: set[str]  # codes of existing units the edits reference or change


def draft_row(session: Session, plan_id: int, *, lock: bool = False) -> Row:
    """The plan's row while it is a draft; PlanClosed once published or abandoned."""
    plan = store.plan_row(session, plan_id, lock=lock)
    if plan.status != DRAFT:
        raise PlanClosed(f"plan {plan_id} is {plan.status}; open a new plan to change more")
    return plan


def load_draft(session: Session, plan_id: int, *, estimate: bool = True) -> Draft:
    """The plan with its edits replayed over the current units (CodeTaken becomes PlanConflict)."""
    plan = store.plan_row(session, plan_id)
    edits = store.edit_rows(session, plan_id)
    root, base, versions = store.load_current(session, plan.unit_code)
    start = PlanState(root.code, dict(base), store.taken(session, root.code))
    try:
        state = replay(start, [store.edit_of(e) for e in edits])
    except CodeTaken as exc:
        conflict = {
            "code": exc.code,
            "reason": "allocated by this draft, used since",
            **store.who_changed(session, exc.code),
        }
        raise PlanConflict(f"plan {plan_id} conflicts: {exc}", [conflict]) from None
    if estimate:
        state = plan_impact.estimate_counts(base, state)
    touched = plan_publication.touched([e.params for e in edits], base, state)
    return Draft(plan, root, base, versions, state, edits, touched)


def conflicts(session: Session, draft: Draft) -> list[dict[str, Any]]:
    """Units the draft touches whose current version is not the one the draft started from."""
    found = plan_publication.conflicts(draft.touched, draft.plan.base, draft.versions)
    return [{**c, **store.who_changed(session, c["code"])} for c in found]


# ---------------------------------------------------------------- steps


def open_plan(session: Session, unit_code: str, title: str, *, author: str) -> int:
    """Open a draft on a unit (a community for its grids, a grid for its micro-grids, ...)."""
    if level_of(unit_code) == Level.MICRO_GRID:
        raise EditError("a micro-grid has nothing below it to redraw; open the plan on its grid")
    if unit_code not in unit_store.units_at(session, [unit_code]):
        raise PlanNotFound(f"no current unit {unit_code}")
    if not title.strip():
        raise EditError("a plan needs a title")
    base = {code: version for code, (_, version) in store.current_below(session, unit_code).items()}
    return store.insert_plan(session, unit_code, title.strip(), author, base)


def list_plans(
    session: Session, *, unit: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    """Plans, newest first; `unit` also finds plans on units below it."""
    return store.list_plans(session, unit=unit, status=status)


def add_edit(session: Session, plan_id: int, edit: Edit, *, author: str) -> int:
    """Apply an edit to the draft (refused with the reason if it cannot apply) and store it."""
    draft_row(session, plan_id, lock=True)
    draft = load_draft(session, plan_id, estimate=False)
    _, allocated = apply_edit(draft.state, edit)
    return store.insert_edit(session, plan_id, edit, {**edit.params, "allocated": allocated}, author=author)


def delete_edit(session: Session, plan_id: int, edit_id: int) -> None:
    """Remove an edit; refused when a later edit needs what it made (delete that one first)."""
    plan = draft_row(session, plan_id, lock=True)
    edits = store.edit_rows(session, plan_id)
    if edit_id not in {e.id for e in edits}:
        raise PlanNotFound(f"plan {plan_id} has no edit {edit_id}")
    root, base, _ = store.load_current(session, plan.unit_code)
    start = PlanState(root.code, dict(base), store.taken(session, root.code))
    try:
        replay(start, [store.edit_of(e) for e in edits if e.id != edit_id])
    except CodeTaken:
        pass  # a conflict, not this deletion's doing: publish will name it
    except EditError as exc:
        raise EditError(f"edit {edit_id} cannot be removed: {exc}") from None
    store.delete_edit_row(session, edit_id)


def abandon(session: Session, plan_id: int, *, actor: str) -> None:
    """Give up a draft (kept for the record; it can no longer be edited or published)."""
    draft_row(session, plan_id, lock=True)
    store.mark_abandoned(session, plan_id)


def validate_plan(session: Session, plan_id: int, settings: Settings) -> list[Problem]:
    """Every problem of the draft: conflicts, invalid geometry, outside parent, new gaps or overlaps, size."""
    try:
        draft = load_draft(session, plan_id)
    except PlanConflict as exc:
        return [plan_publication.conflict_problem(c) for c in exc.conflicts]
    return problems(session, draft, settings)


def problems(session: Session, draft: Draft, settings: Settings) -> list[Problem]:
    """A loaded draft's problems: its conflicts, then what geo.plan_validation and geo.plan_checks find."""
    found = [plan_publication.conflict_problem(c) for c in conflicts(session, draft)]
    tolerances = coverage.Tolerances.from_settings(settings)
    found += validate(draft.base, draft.state, draft.root.geometry, tolerances)
    return found + plan_checks.checks(draft.base, draft.state)


# ---------------------------------------------------------------- reading


def plan_detail(session: Session, plan_id: int) -> dict[str, Any]:
    """A plan with its edits, the units it changes (as GeoJSON) and any conflicts."""
    plan = store.plan_row(session, plan_id)
    edits = store.edit_rows(session, plan_id)
    published = plan_history.published_changes(session, plan_id) if plan.status == PUBLISHED else None
    detail = {
        **store.plan_summary(plan),
        "edits": [
            {
                "id": e.id,
                "seq": e.seq,
                "operation": e.operation,
                "params": e.params,
                "geometry": geojson_geometry(store.edit_of(e).geometry),
                "author": e.author,
                "created_at": e.created_at,
            }
            for e in edits
        ],
        "published_changes": published,
    }
    if plan.status != DRAFT:
        return detail
    try:
        draft = load_draft(session, plan_id)
    except PlanConflict as exc:
        return {**detail, "conflicts": exc.conflicts, "changes": None}
    return {
        **detail,
        "notes": draft.state.notes,
        "conflicts": conflicts(session, draft),
        "changes": geojson.feature_collection(
            _change_feature(c, draft) for c in changes(draft.base, draft.state)
        ),
    }


def _change_feature(change: Change, draft: Draft) -> dict[str, Any]:
    unit = change.after or change.before
    properties = {
        **unit_properties(unit),
        "change": change.change,
        "geometry_changed": change.geometry_changed,
        "base_version": draft.versions.get(change.code),
        "estimated": change.code in draft.state.estimated,
        "successor": draft.state.successors.get(change.code),
    }
    return geojson.feature(unit.geometry, properties, id=change.code)


def unit_diff(session: Session, code: str, start: datetime, end: datetime) -> dict[str, Any]:
    """Units below (and including) `code` created, retired or changed between two dates, with their areas."""
    return plan_history.unit_diff(session, code, start, end)


def case_assignments(session: Session, case_id: int) -> list[dict[str, Any]]:
    """The grid (and version) a case was assigned to over time: at intake, then after each redraw."""
    return plan_history.case_assignments(session, case_id)


def database_now(session: Session) -> datetime:
    """The database's clock (every process agrees on it)."""
    return store.now(session)
