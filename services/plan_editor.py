"""What the planner's editor asks of a draft besides the plan API: an edit's preview, the balance."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from geo import balance, coverage, geojson
from geo import plans as domain
from geo.plan_edits import apply_edit
from geo.plans import Change, Edit, changes
from geo.settings import Settings
from services.plans import draft_row, load_draft


def preview(session: Session, plan_id: int, edit: Edit) -> dict[str, Any]:
    """The units one edit would create, change or retire in the draft, without storing it.

    Features come in the order the edit makes them (a split: the piece that keeps the code first,
    then the new pieces in reading order), so that the editor can ask a name for every piece.
    """
    draft_row(session, plan_id)
    draft = load_draft(session, plan_id, estimate=False)
    after, allocated = apply_edit(draft.state, edit)
    found = changes(draft.state.units, after)
    order = {code: i for i, code in enumerate([edit.params.get("code"), *allocated])}
    found.sort(key=lambda c: (order.get(c.code, len(order)), c.code))
    return geojson.feature_collection(
        [_feature(c) for c in found], allocated=allocated, notes=after.notes[len(draft.state.notes) :]
    )


def _feature(change: Change) -> dict[str, Any]:
    unit = change.after or change.before
    properties = {**domain.unit_properties(unit), "change": change.change}
    return geojson.feature(unit.geometry, properties, id=change.code)


def plan_balance(session: Session, plan_id: int, settings: Settings) -> dict[str, Any]:
    """Households of every grid of the draft against its kind's size norm, and the spread per kind."""
    draft = load_draft(session, plan_id)
    tolerances = coverage.Tolerances.from_settings(settings)
    grids = balance.grid_balance(draft.state, tolerances)
    changed = {c.code for c in changes(draft.base, draft.state)}
    return {
        "norms": {k: list(v) for k, v in balance.norms(tolerances).items()},
        "grids": [
            {**g.__dict__, "norm": list(g.norm) if g.norm else None, "changed": g.code in changed}
            for g in grids
        ],
        "spread": [s.__dict__ for s in balance.spreads(grids)],
    }
