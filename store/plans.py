"""Draft plans in the store: open, edit, validate, impact, publish, abandon; unit diffs over time.

A draft is its unit's current children (and their children) with the plan's edits replayed over
them (geo.plans). `plans.base` records the version of every unit below the plan's unit when the
draft was opened; publishing checks, under row locks, that every unit the draft touches is still
at that version, so two drafts touching the same grid cannot both be published.

Every write happens in the caller's transaction; the caller commits. A publish is one
transaction: new versions, closed versions, retired codes, reassigned cases and their history,
re-linked staff and party cells and the plan's status all commit together or not at all.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import shapely
from sqlalchemy import Row, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cases.lifecycle import FINISHED_STATUSES
from errors import Conflict, Invalid, NotFound
from geo import coverage, crs, plan_checks
from geo import plans as domain
from geo.codes import Level, level_of
from geo.people import PartyCellKind
from geo.plans import Edit, EditError, Operation, PlanState, Problem
from geo.settings import Settings
from geo.validation import UnitFeature
from store import cases as case_store
from store import units as unit_store
from store.geometry import from_wkb, geojson_sql, geom_sql, to_wkb
from store.locate import locate

DRAFT, PUBLISHED, ABANDONED = "draft", "published", "abandoned"
AREA_NOTE = (
    "households and population that move with an area are estimated by area share of the unit they "
    "leave (an edit that gives the counts overrides the estimate); open cases, party cells and staff "
    "are exact"
)


class PlanNotFound(NotFound):
    """No plan with that id."""


class PlanClosed(Conflict):
    """The plan is published or abandoned: it can no longer change."""


class PlanConflict(Conflict):
    """Units the draft touches changed since it was opened (or codes it allocated were used)."""

    def __init__(self, message: str, conflicts: list[dict[str, Any]]) -> None:
        self.conflicts = conflicts
        super().__init__(message)


class PlanInvalid(Invalid):
    """The draft has problems that refuse a publish; `problems` lists them with their locations."""

    def __init__(self, message: str, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(message)


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


# ---------------------------------------------------------------- plans and edits


def open_plan(session: Session, unit_code: str, title: str, *, author: str) -> int:
    """Open a draft on a unit (a community for its grids, a grid for its micro-grids, ...)."""
    level = level_of(unit_code)
    if level == Level.MICRO_GRID:
        raise EditError("a micro-grid has nothing below it to redraw; open the plan on its grid")
    if unit_code not in unit_store.units_at(session, [unit_code]):
        raise PlanNotFound(f"no current unit {unit_code}")
    if not title.strip():
        raise EditError("a plan needs a title")
    base = {code: version for code, (_, version) in _current_below(session, unit_code).items()}
    return session.execute(
        text(
            """INSERT INTO plans (unit_code, title, author, base, created_at)
               VALUES (:unit, :title, :author, CAST(:base AS jsonb), clock_timestamp()) RETURNING id"""
        ),
        {"unit": unit_code, "title": title.strip(), "author": author, "base": json.dumps(base)},
    ).scalar_one()


def _plan(session: Session, plan_id: int, *, lock: bool = False) -> Row:
    row = session.execute(
        text(f"SELECT * FROM plans WHERE id = :id {'FOR UPDATE' if lock else ''}"), {"id": plan_id}
    ).first()
    if row is None:
        raise PlanNotFound(f"no plan {plan_id}")
    return row


def _draft_row(session: Session, plan_id: int, *, lock: bool = False) -> Row:
    plan = _plan(session, plan_id, lock=lock)
    if plan.status != DRAFT:
        raise PlanClosed(f"plan {plan_id} is {plan.status}; open a new plan to change more")
    return plan


def list_plans(
    session: Session, *, unit: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    """Plans, newest first; `unit` also finds plans on units below it."""
    rows = session.execute(
        text(
            """SELECT p.*, (SELECT count(*) FROM plan_edits e WHERE e.plan_id = p.id) AS edit_count
               FROM plans p
               WHERE (CAST(:unit AS text) IS NULL OR p.unit_code LIKE CAST(:unit AS text) || '%')
                 AND (CAST(:status AS text) IS NULL OR p.status = CAST(:status AS text))
               ORDER BY p.id DESC"""
        ),
        {"unit": unit, "status": status},
    ).all()
    return [{**_plan_summary(r), "edits": r.edit_count} for r in rows]


def _plan_summary(plan: Row) -> dict[str, Any]:
    return {
        "id": plan.id,
        "unit": plan.unit_code,
        "title": plan.title,
        "author": plan.author,
        "status": plan.status,
        "created_at": plan.created_at,
        "published_at": plan.published_at,
        "published_by": plan.published_by,
        "abandoned_at": plan.abandoned_at,
    }


def add_edit(session: Session, plan_id: int, edit: Edit, *, author: str) -> int:
    """Apply an edit to the draft (refused with the reason if it cannot apply) and store it."""
    _draft_row(session, plan_id, lock=True)
    draft = load_draft(session, plan_id, estimate=False)
    _, allocated = domain.apply_edit(draft.state, edit)
    params = {**edit.params, "allocated": allocated}
    return session.execute(
        text(
            f"""INSERT INTO plan_edits (plan_id, seq, operation, params, geom, author, created_at)
                VALUES (:plan, (SELECT coalesce(max(seq), 0) + 1 FROM plan_edits WHERE plan_id = :plan),
                        :operation, CAST(:params AS jsonb),
                        CASE WHEN CAST(:wkb AS bytea) IS NULL THEN NULL ELSE {geom_sql("wkb")} END,
                        :author, clock_timestamp())
                RETURNING id"""
        ),
        {
            "plan": plan_id,
            "operation": Operation(edit.operation).value,
            "params": json.dumps(params, ensure_ascii=False),
            "wkb": to_wkb(edit.geometry) if edit.geometry is not None else None,
            "author": author,
        },
    ).scalar_one()


def delete_edit(session: Session, plan_id: int, edit_id: int) -> None:
    """Remove an edit; refused when a later edit needs what it made (delete that one first)."""
    _draft_row(session, plan_id, lock=True)
    edits = _edits(session, plan_id)
    if edit_id not in {e.id for e in edits}:
        raise PlanNotFound(f"plan {plan_id} has no edit {edit_id}")
    root, base, _ = _load_current(session, _plan(session, plan_id).unit_code)
    start = PlanState(root.code, dict(base), _taken(session, root.code))
    try:
        domain.replay(start, [_edit_of(e) for e in edits if e.id != edit_id])
    except domain.CodeTaken:
        pass  # a conflict, not this deletion's doing: publish will name it
    except EditError as exc:
        raise EditError(f"edit {edit_id} cannot be removed: {exc}") from None
    session.execute(text("DELETE FROM plan_edits WHERE id = :id"), {"id": edit_id})


def abandon(session: Session, plan_id: int, *, actor: str) -> None:
    """Give up a draft (kept for the record; it can no longer be edited or published)."""
    _draft_row(session, plan_id, lock=True)
    session.execute(
        text("UPDATE plans SET status = 'abandoned', abandoned_at = clock_timestamp() WHERE id = :id"),
        {"id": plan_id},
    )


def _edits(session: Session, plan_id: int) -> list[Row]:
    return session.execute(
        text(
            """SELECT id, seq, operation, params, ST_AsBinary(geom) AS wkb, author, created_at
               FROM plan_edits WHERE plan_id = :plan ORDER BY seq"""
        ),
        {"plan": plan_id},
    ).all()


def _edit_of(row: Row) -> Edit:
    return Edit(Operation(row.operation), row.params, from_wkb(row.wkb))


# ---------------------------------------------------------------- loading a draft


def _current_below(session: Session, code: str) -> dict[str, tuple[UnitFeature, int]]:
    """Current versions of every unit below `code`, as features with their version numbers."""
    rows = session.execute(
        text(
            """SELECT v.code, u.level, v.version, v.name, v.kind, v.special_type, v.households,
                      v.population, v.attributes, ST_AsBinary(v.geom) AS wkb
               FROM unit_versions v JOIN units u USING (code)
               WHERE v.code LIKE :prefix AND v.code <> :code AND v.valid_to IS NULL
               ORDER BY v.code"""
        ),
        {"prefix": code + "%", "code": code},
    ).all()
    return {r.code: (_feature(r), r.version) for r in rows}


def _feature(r: Row) -> UnitFeature:
    return UnitFeature(
        r.code,
        r.name,
        Level(r.level),
        from_wkb(r.wkb),
        r.kind,
        r.special_type,
        r.households,
        r.population,
        r.attributes or {},
    )


def _load_current(
    session: Session, root_code: str
) -> tuple[UnitFeature, dict[str, UnitFeature], dict[str, int]]:
    found = unit_store.units_at(session, [root_code])
    if root_code not in found:
        raise PlanConflict(f"unit {root_code} has no current version", [{"code": root_code}])
    r = found[root_code]
    root = UnitFeature(r.code, r.name, Level(r.level), r.geometry, r.kind, r.special_type)
    below = _current_below(session, root_code)
    return root, {c: f for c, (f, _) in below.items()}, {c: v for c, (_, v) in below.items()}


def _taken(session: Session, root_code: str) -> set[str]:
    """Every code ever used below the root, current or retired: none is allocated again."""
    rows = session.execute(text("SELECT code FROM units WHERE code LIKE :p"), {"p": root_code + "%"})
    return {r.code for r in rows}


def load_draft(session: Session, plan_id: int, *, estimate: bool = True) -> Draft:
    """The plan with its edits replayed over the current units (CodeTaken becomes PlanConflict)."""
    plan = _plan(session, plan_id)
    edits = _edits(session, plan_id)
    root, base, versions = _load_current(session, plan.unit_code)
    start = PlanState(root.code, dict(base), _taken(session, root.code))
    try:
        state = domain.replay(start, [_edit_of(e) for e in edits])
    except domain.CodeTaken as exc:
        conflict = {
            "code": exc.code,
            "reason": "allocated by this draft, used since",
            **_who(session, exc.code),
        }
        raise PlanConflict(f"plan {plan_id} conflicts: {exc}", [conflict]) from None
    if estimate:
        state = domain.estimate_counts(base, state)
    touched = _touched(edits, base, state)
    return Draft(plan, root, base, versions, state, edits, touched)


def _touched(edits: list[Row], base: dict[str, UnitFeature], state: PlanState) -> set[str]:
    """Existing units the draft names or changes (codes it allocated itself are not among them)."""
    named, allocated = set(), set()
    for e in edits:
        p = e.params
        named.update(c for c in [p.get("code"), p.get("into"), p.get("to"), p.get("parent")] if c)
        named.update(p.get("codes") or [])
        allocated.update(p.get("allocated") or [])
    changed = {c.code for c in domain.changes(base, state) if c.change != "created"}
    return (named | changed) - allocated - {state.root}


# ---------------------------------------------------------------- conflicts and validation


def conflicts(session: Session, draft: Draft) -> list[dict[str, Any]]:
    """Units the draft touches whose current version is not the one the draft started from."""
    base = draft.plan.base
    out = []
    for code in sorted(draft.touched):
        started, now = base.get(code), draft.versions.get(code)
        if started == now and started is not None:
            continue
        reason = (
            "created since the draft was opened"
            if started is None
            else "retired since the draft was opened"
            if now is None
            else f"changed since the draft was opened (version {started} → {now})"
        )
        out.append(
            {
                "code": code,
                "base_version": started,
                "current_version": now,
                "reason": reason,
                **_who(session, code),
            }
        )
    return out


def _who(session: Session, code: str) -> dict[str, Any]:
    """The published plan that last changed a unit, if a plan did."""
    row = session.execute(
        text(
            """SELECT p.id, p.title FROM plan_changes c JOIN plans p ON p.id = c.plan_id
               WHERE c.code = :code ORDER BY p.published_at DESC LIMIT 1"""
        ),
        {"code": code},
    ).first()
    return {"by_plan": row.id, "by_plan_title": row.title} if row else {"by_plan": None}


def _conflict_message(plan_id: int, found: list[dict[str, Any]]) -> str:
    named = "; ".join(
        f"{c['code']} {c['reason']}"
        + (f" by plan {c['by_plan']} ({c['by_plan_title']})" if c.get("by_plan") else "")
        for c in found
    )
    return f"plan {plan_id} conflicts with changes published since it was opened: {named}"


def validate_plan(session: Session, plan_id: int, settings: Settings) -> list[Problem]:
    """Every problem of the draft: conflicts, invalid geometry, outside parent, new gaps or overlaps, size."""
    try:
        draft = load_draft(session, plan_id)
    except PlanConflict as exc:
        return [_conflict_problem(c) for c in exc.conflicts]
    return _validate(session, draft, settings)


def _validate(session: Session, draft: Draft, settings: Settings) -> list[Problem]:
    problems = [_conflict_problem(c) for c in conflicts(session, draft)]
    tolerances = coverage.Tolerances.from_settings(settings)
    found = domain.validate(draft.base, draft.state, draft.root.geometry, tolerances)
    return problems + found + plan_checks.checks(draft.base, draft.state)


def _conflict_problem(c: dict[str, Any]) -> Problem:
    by = f" by plan {c['by_plan']}" if c.get("by_plan") else ""
    return Problem("conflict", domain.ERROR, (c["code"],), f"{c['code']} {c['reason']}{by}")


# ---------------------------------------------------------------- applying (publish and its rehearsal)


@dataclass
class Applied:
    """What applying a draft to the store did (or would do)."""

    at: datetime
    created: list[str]
    changed: list[str]
    retired: list[str]
    cases: list[dict[str, Any]]  # each case whose responsible grid changes: from → to


def _apply_units(session: Session, draft: Draft, at: datetime) -> tuple[list[str], list[str], list[str]]:
    """New versions from `at` for created and changed units; retired ones closed (never reused)."""
    changes = domain.changes(draft.base, draft.state)
    features = [c.after for c in changes if c.after is not None]
    warnings = {
        code: [f"households and population estimated by area share (plan {draft.plan.id})"]
        for code in draft.state.estimated
    }
    try:
        with session.begin_nested():
            summary = unit_store.write_units(session, features, valid_from=at, warnings=warnings)
            retired = unit_store.retire_units(session, draft.state.retired & draft.base.keys(), at=at)
    except IntegrityError as exc:
        # A code allocated here was created by another transaction that committed meanwhile.
        raise PlanConflict(
            f"plan {draft.plan.id} conflicts: a unit it creates was created meanwhile ({exc.orig})", []
        ) from None
    return summary.created, summary.versioned, retired


def _moved_cases(session: Session, draft: Draft, settings: Settings) -> list[tuple[Row, Any]]:
    """Open cases whose responsible grid differs under the applied draft: (case row, new assignment).

    Candidates are open cases on a unit the draft touches, or within the snap tolerance of any
    area it changes; each is assigned again by the rule in PostGIS (store.locate) as the
    session now sees the units.
    """
    changes = [c for c in domain.changes(draft.base, draft.state) if c.geometry_changed]
    affected = sorted({c.code for c in changes} | draft.touched)
    areas = [c.before.geometry for c in changes if c.before is not None]
    areas += [c.after.geometry for c in changes if c.after is not None and domain.usable(c.after)]
    area = _buffered(shapely.union_all(areas), settings.snap_tolerance_m + 1) if areas else None
    rows = session.execute(
        text(
            f"""SELECT id, number, status, grid_code, grid_version, ST_X(geom) AS lon, ST_Y(geom) AS lat
                FROM cases
                WHERE status <> ALL(:finished)
                  AND (grid_code = ANY(:affected)
                       OR (CAST(:wkb AS bytea) IS NOT NULL AND ST_Intersects(geom, {geom_sql("wkb")})))
                ORDER BY id"""
        ),
        {
            "finished": FINISHED_STATUSES,
            "affected": affected,
            "wkb": to_wkb(area) if area is not None else None,
        },
    ).all()
    moved = []
    for row in rows:
        answer = locate(session, row.lon, row.lat, tolerance_m=settings.snap_tolerance_m)
        new = answer.grid.code if answer.grid else None
        if new != row.grid_code:
            moved.append((row, answer))
    return moved


def _buffered(geometry: shapely.Geometry, metres: float) -> shapely.Geometry:
    metric = crs.metric_crs_of(geometry)
    return domain.to_storage(shapely.buffer(crs.to_metric(geometry, metric), metres), metric)


def _case_move(row: Row, answer: Any) -> dict[str, Any]:
    grid = answer.grid
    return {
        "id": row.id,
        "number": row.number,
        "status": row.status,
        "lon": row.lon,
        "lat": row.lat,
        "from": {"grid": row.grid_code, "version": row.grid_version},
        "to": {"grid": grid.code if grid else None, "version": grid.version if grid else None},
        "assign_status": answer.status,
        "explanation": answer.explanation,
    }


@contextmanager
def _rehearsal(session: Session) -> Iterator[None]:
    """Run the block in a savepoint that is always rolled back: nothing it writes survives."""
    nested = session.begin_nested()
    try:
        yield
    finally:
        nested.rollback()


@contextmanager
def _in_transaction(session: Session) -> Iterator[Session]:
    """The caller's session, or for an autocommit one (GET requests, api/deps.py) a transactional
    session on the same database that is rolled back afterwards: a savepoint needs a transaction."""
    # get_isolation_level() asks the server, which knows nothing of the driver's autocommit.
    if session.connection().get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        yield session
        return
    with session.get_bind().connect() as connection:
        # The engine's option would not undo the driver's autocommit; the connection's does.
        connection.execution_options(isolation_level="READ COMMITTED")
        transaction = connection.begin()
        try:
            yield Session(bind=connection, join_transaction_mode="create_savepoint")
        finally:
            transaction.rollback()


def now(session: Session) -> datetime:
    """The database's clock (every process agrees on it; it moves within a transaction)."""
    return session.execute(text("SELECT clock_timestamp()")).scalar_one()


# ---------------------------------------------------------------- impact


def impact(session: Session, plan_id: int, settings: Settings) -> dict[str, Any]:
    """What changes hands: per unit before/after, the changed areas, the cases, cells and staff that move."""
    with _in_transaction(session) as session:
        return _impact(session, plan_id, settings)


def _impact(session: Session, plan_id: int, settings: Settings) -> dict[str, Any]:
    draft = load_draft(session, plan_id)
    found = conflicts(session, draft)
    if found:
        raise PlanConflict(_conflict_message(plan_id, found), found)
    with _rehearsal(session):
        _apply_units(session, draft, now(session))
        cases = [_case_move(r, a) for r, a in _moved_cases(session, draft, settings)]
    cells, staff = _people_moves(session, draft)
    transfers = domain.transfers(draft.base, draft.state)
    return {
        "plan": _plan_summary(draft.plan),
        "note": AREA_NOTE,
        "units": _per_unit(session, draft, cases, cells, staff),
        "transfers": {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": domain.geojson_geometry(t.geometry),
                    "properties": {
                        "from": t.from_code,
                        "to": t.to_code,
                        "area_m2": round(t.area_m2, 1),
                        "households": round(t.households, 1),
                        "population": round(t.population, 1),
                        "estimated": True,
                    },
                }
                for t in transfers
            ],
        },
        "cases": cases,
        "party_cells": cells,
        "staff": staff,
    }


def _people_moves(session: Session, draft: Draft) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Party cells and staff whose unit changes: central households by point, the rest with their unit."""
    codes = sorted(draft.base)
    cells = session.execute(
        text(
            """SELECT id, kind, unit_code, ST_X(location) AS lon, ST_Y(location) AS lat
               FROM party_cells WHERE unit_code = ANY(:codes) OR unit_code LIKE :prefix ORDER BY id"""
        ),
        {"codes": codes, "prefix": draft.root.code + "%"},
    ).all()
    staff = session.execute(
        text("SELECT id, role, unit_code FROM staff WHERE unit_code = ANY(:codes) ORDER BY id"),
        {"codes": codes},
    ).all()
    cell_moves = []
    for cell in cells:
        if cell.kind == PartyCellKind.CENTRAL_HOUSEHOLD and cell.lon is not None:
            to = _household_unit(draft, cell.unit_code, shapely.Point(cell.lon, cell.lat))
        else:
            to = _successor(draft.state, cell.unit_code)
        if to != cell.unit_code:
            # No names: a central household is named after a person (personal data, like phones).
            cell_moves.append({"id": cell.id, "kind": cell.kind, "from": cell.unit_code, "to": to})
    staff_moves = [
        {"id": s.id, "role": s.role, "from": s.unit_code, "to": to}
        for s in staff
        if (to := _successor(draft.state, s.unit_code)) != s.unit_code
    ]
    return cell_moves, staff_moves


def _successor(state: PlanState, code: str) -> str | None:
    """Who holds a unit's people after the draft: itself, the unit that took its area, or nobody."""
    seen = set()
    while code in state.retired and code not in seen:
        seen.add(code)
        code = state.successors.get(code)
        if code is None:
            return None
    return code


def _household_unit(draft: Draft, old: str, point: shapely.Geometry) -> str | None:
    """The base unit of the old unit's level covering a central household after the draft."""
    kept = draft.state.units.get(old)
    if kept is not None and domain.usable(kept) and shapely.covers(kept.geometry, point):
        return old
    level = len(old)
    candidates = sorted(
        c
        for c, u in draft.state.units.items()
        if len(c) == level and u.kind != "special" and domain.usable(u) and shapely.covers(u.geometry, point)
    )
    if candidates:
        return candidates[0]
    return _successor(draft.state, old)


def _per_unit(session, draft, cases, cells, staff) -> list[dict[str, Any]]:
    changes = domain.changes(draft.base, draft.state)
    codes = sorted({c.code for c in changes} | {m["to"] for m in cells + staff if m["to"]})
    codes = [c for c in codes if c in draft.base or c in draft.state.units]
    open_before = _open_cases_by_grid(session, codes)
    counts_before = _people_counts(session, codes)
    out = []
    by_code = {c.code: c for c in changes}
    for code in codes:
        before, after = draft.base.get(code), draft.state.units.get(code)
        cases_after = (
            open_before.get(code, 0)
            - sum(1 for m in cases if m["from"]["grid"] == code)
            + sum(1 for m in cases if m["to"]["grid"] == code)
        )
        people = {}
        for what, moves in (("party_cells", cells), ("staff", staff)):
            had = counts_before.get((what, code), 0)
            gone = sum(1 for m in moves if m["from"] == code)
            came = sum(1 for m in moves if m["to"] == code)
            people[what] = {"before": had, "after": had - gone + came if after is not None else 0}
        unit = after or before
        out.append(
            {
                "code": code,
                "name": unit.name,
                "level": str(unit.level),
                "kind": unit.kind,
                "change": by_code[code].change if code in by_code else "unchanged",
                "households": {
                    "before": before.households if before else None,
                    "after": after.households if after else None,
                },
                "population": {
                    "before": before.population if before else None,
                    "after": after.population if after else None,
                },
                "estimated": code in draft.state.estimated,
                "open_cases": {"before": open_before.get(code, 0), "after": cases_after},
                **people,
            }
        )
    return out


def _open_cases_by_grid(session: Session, codes: list[str]) -> dict[str, int]:
    rows = session.execute(
        text(
            """SELECT grid_code, count(*) AS n FROM cases
               WHERE grid_code = ANY(:codes) AND status <> ALL(:finished) GROUP BY grid_code"""
        ),
        {"codes": codes, "finished": FINISHED_STATUSES},
    ).all()
    return {r.grid_code: r.n for r in rows}


def _people_counts(session: Session, codes: list[str]) -> dict[tuple[str, str], int]:
    rows = session.execute(
        text(
            """SELECT 'party_cells' AS what, unit_code, count(*) AS n FROM party_cells
               WHERE unit_code = ANY(:codes) GROUP BY unit_code
               UNION ALL
               SELECT 'staff', unit_code, count(*) FROM staff
               WHERE unit_code = ANY(:codes) GROUP BY unit_code"""
        ),
        {"codes": codes},
    ).all()
    return {(r.what, r.unit_code): r.n for r in rows}


# ---------------------------------------------------------------- publish


def publish(session: Session, plan_id: int, settings: Settings, *, actor: str) -> dict[str, Any]:
    """Apply a draft in the caller's transaction: all of it or (on any error) none of it.

    Conflicts are detected under locks: the plan's row, then its unit's current version (which
    serialises publishes below one unit), then the current versions of every unit the draft
    touches, in code order (no deadlocks between publishes); each must still be the version the
    draft started from. A unit changed meanwhile is a PlanConflict naming it and the plan that
    changed it; errors in the draft are PlanInvalid; nothing is written before both checks pass.
    """
    plan = _draft_row(session, plan_id, lock=True)
    session.execute(
        text("SELECT id FROM unit_versions WHERE code = :code AND valid_to IS NULL FOR UPDATE"),
        {"code": plan.unit_code},
    )
    draft = load_draft(session, plan_id)
    locked = dict(
        session.execute(
            text(
                """SELECT code, version FROM unit_versions
                   WHERE code = ANY(:codes) AND valid_to IS NULL ORDER BY code FOR UPDATE"""
            ),
            {"codes": sorted(draft.touched)},
        ).all()
    )
    draft.versions = {**draft.versions, **{c: locked.get(c) for c in draft.touched}}
    found = conflicts(session, draft)
    if found:
        raise PlanConflict(_conflict_message(plan_id, found), found)
    errors = [p for p in _validate(session, draft, settings) if p.severity == domain.ERROR]
    if errors:
        raise PlanInvalid(f"plan {plan_id} has {len(errors)} problem(s); GET its validation for each", errors)

    at = now(session)
    created, changed, retired = _apply_units(session, draft, at)
    _record_changes(session, draft, created, changed, retired, at)
    moved = _moved_cases(session, draft, settings)
    cases = [
        case_store.reassign_after_redraw(session, row.id, answer, actor=actor, plan_id=plan_id, now=at)
        for row, answer in moved
    ]
    cells, staff = _people_moves(session, draft)
    _relink_people(session, cells, staff)
    session.execute(
        text(
            "UPDATE plans SET status = 'published', published_at = :at, published_by = :actor WHERE id = :id"
        ),
        {"at": at, "actor": actor, "id": plan_id},
    )
    return {
        "plan": _plan_summary(_plan(session, plan_id)),
        "created": created,
        "changed": changed,
        "retired": retired,
        "cases": cases,
        "party_cells": cells,
        "staff": staff,
    }


def _record_changes(session, draft: Draft, created, changed, retired, at: datetime) -> None:
    current = unit_store.units_at(session, created + changed)
    rows = (
        [{"code": c, "change": "created", "old": None, "new": current[c].version} for c in created]
        + [
            {"code": c, "change": "changed", "old": draft.versions[c], "new": current[c].version}
            for c in changed
        ]
        + [{"code": c, "change": "retired", "old": draft.versions[c], "new": None} for c in retired]
    )
    if rows:
        session.execute(
            text(
                """INSERT INTO plan_changes (plan_id, code, change, old_version, new_version)
                   VALUES (:plan, :code, :change, :old, :new)"""
            ),
            [{**r, "plan": draft.plan.id} for r in rows],
        )
    if retired:
        session.execute(
            text("INSERT INTO retired_codes (code, retired_at, plan_id) VALUES (:code, :at, :plan)"),
            [{"code": c, "at": at, "plan": draft.plan.id} for c in retired],
        )


def _relink_people(session: Session, cells: list[dict[str, Any]], staff: list[dict[str, Any]]) -> None:
    """Move party cells and staff to their new units (those left without one stay, and are reported)."""
    cell_rows = [{"id": m["id"], "to": m["to"]} for m in cells if m["to"]]
    staff_rows = [{"id": m["id"], "to": m["to"]} for m in staff if m["to"]]
    if cell_rows:
        session.execute(text("UPDATE party_cells SET unit_code = :to WHERE id = :id"), cell_rows)
    if staff_rows:
        session.execute(text("UPDATE staff SET unit_code = :to WHERE id = :id"), staff_rows)


# ---------------------------------------------------------------- reading


def plan_detail(session: Session, plan_id: int) -> dict[str, Any]:
    """A plan with its edits, the units it changes (as GeoJSON) and any conflicts."""
    plan = _plan(session, plan_id)
    edits = _edits(session, plan_id)
    detail = {
        **_plan_summary(plan),
        "edits": [
            {
                "id": e.id,
                "seq": e.seq,
                "operation": e.operation,
                "params": e.params,
                "geometry": domain.geojson_geometry(from_wkb(e.wkb)),
                "author": e.author,
                "created_at": e.created_at,
            }
            for e in edits
        ],
        "published_changes": _published_changes(session, plan_id) if plan.status == PUBLISHED else None,
    }
    if plan.status != DRAFT:
        return detail
    try:
        draft = load_draft(session, plan_id)
    except PlanConflict as exc:
        return {**detail, "conflicts": exc.conflicts, "changes": None}
    changes = domain.changes(draft.base, draft.state)
    return {
        **detail,
        "notes": draft.state.notes,
        "conflicts": conflicts(session, draft),
        "changes": {
            "type": "FeatureCollection",
            "features": [_change_feature(c, draft) for c in changes],
        },
    }


def _change_feature(change: domain.Change, draft: Draft) -> dict[str, Any]:
    unit = change.after or change.before
    return {
        "type": "Feature",
        "id": change.code,
        "geometry": domain.geojson_geometry(unit.geometry),
        "properties": {
            **domain.unit_properties(unit),
            "change": change.change,
            "geometry_changed": change.geometry_changed,
            "base_version": draft.versions.get(change.code),
            "estimated": change.code in draft.state.estimated,
            "successor": draft.state.successors.get(change.code),
        },
    }


def _published_changes(session: Session, plan_id: int) -> list[dict[str, Any]]:
    rows = session.execute(
        text(
            "SELECT code, change, old_version, new_version FROM plan_changes WHERE plan_id = :p ORDER BY code"
        ),
        {"p": plan_id},
    ).all()
    return [dict(r._mapping) for r in rows]


def problems_geojson(problems: list[Problem]) -> dict[str, Any]:
    """Validation problems as a GeoJSON FeatureCollection (geometry = where the problem is)."""
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": domain.geojson_geometry(p.geometry),
                "properties": {
                    "kind": p.kind,
                    "severity": p.severity,
                    "units": list(p.units),
                    "message": p.message,
                    "area_m2": round(p.area_m2, 1) if p.area_m2 is not None else None,
                },
            }
            for p in problems
        ],
    }


def unit_diff(session: Session, code: str, start: datetime, end: datetime) -> dict[str, Any]:
    """Units below (and including) `code` created, retired or changed between two dates, with their areas."""
    changed_area = (
        "CASE WHEN a.code IS NULL THEN b.geom WHEN b.code IS NULL THEN a.geom"
        " ELSE ST_SymDifference(a.geom, b.geom) END"
    )
    rows = session.execute(
        text(
            f"""WITH a AS (SELECT code, version, name, geom FROM unit_versions v
                           WHERE code LIKE :prefix AND {unit_store.valid_at_sql("v", "start")}),
                     b AS (SELECT code, version, name, geom FROM unit_versions v
                           WHERE code LIKE :prefix AND {unit_store.valid_at_sql("v", "end")})
                SELECT coalesce(a.code, b.code) AS code, a.version AS old_version, b.version AS new_version,
                       coalesce(b.name, a.name) AS name,
                       CASE WHEN a.code IS NULL THEN 'created' WHEN b.code IS NULL THEN 'retired'
                            ELSE 'changed' END AS change,
                       {geojson_sql(changed_area)} AS geometry,
                       ST_Area(({changed_area})::geography) AS area_m2
                FROM a FULL JOIN b USING (code)
                WHERE a.version IS DISTINCT FROM b.version
                ORDER BY 1"""
        ),
        {"prefix": code + "%", "start": start, "end": end},
    ).all()
    return {
        "unit": code,
        "from": start,
        "to": end,
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": r.code,
                "geometry": json.loads(r.geometry) if r.geometry else None,
                "properties": {
                    "code": r.code,
                    "level": str(level_of(r.code)),
                    "name": r.name,
                    "change": r.change,
                    "old_version": r.old_version,
                    "new_version": r.new_version,
                    "changed_area_m2": round(r.area_m2, 1),
                    "plan": _plan_of_change(session, r.code, r.new_version, r.change),
                },
            }
            for r in rows
        ],
    }


def _plan_of_change(session: Session, code: str, new_version: int | None, change: str) -> int | None:
    row = session.execute(
        text(
            """SELECT plan_id FROM plan_changes
               WHERE code = :code AND new_version IS NOT DISTINCT FROM :v AND change = :change
               ORDER BY id DESC LIMIT 1"""
        ),
        {"code": code, "v": new_version, "change": change},
    ).first()
    return row.plan_id if row else None


def case_assignments(session: Session, case_id: int) -> list[dict[str, Any]]:
    """The grid (and version) a case was assigned to over time: at intake, then after each redraw."""
    case = session.execute(
        text("SELECT id, grid_code, grid_version, reported_at FROM cases WHERE id = :id"), {"id": case_id}
    ).first()
    if case is None:
        raise case_store.CaseNotFound(f"no case {case_id}")
    redraws = session.execute(
        text(
            """SELECT at, actor, details FROM case_history
               WHERE case_id = :id AND action = 'redraw' ORDER BY id"""
        ),
        {"id": case_id},
    ).all()
    first = redraws[0].details["from"] if redraws else {"grid": case.grid_code, "version": case.grid_version}
    out = [
        {
            "from": case.reported_at,
            "grid": first["grid"],
            "version": first["version"],
            "by": "intake",
            "plan": None,
        }
    ]
    for r in redraws:
        out.append(
            {
                "from": r.at,
                "grid": r.details["to"]["grid"],
                "version": r.details["to"]["version"],
                "by": r.actor,
                "plan": r.details.get("plan_id"),
            }
        )
    for earlier, later in itertools.pairwise(out):
        earlier["to"] = later["from"]
    out[-1]["to"] = None
    return out
