"""Draft plans in the store: plan and edit rows, the current units below a plan's unit.

SQL and row mapping only: services.plans replays a plan's edits over the units loaded here
(geo.plan_edits), decides, and writes through here and store.plan_publish. `plans.base` records
the version of every unit below the plan's unit when the draft was opened. Every write happens in
the caller's transaction; the caller commits.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.orm import Session

from geo.codes import Level
from geo.plans import Edit, Operation, PlanConflict, PlanNotFound
from geo.validation import UnitFeature
from store import units as unit_store
from store.geometry import from_wkb, geom_sql, to_wkb

DRAFT, PUBLISHED, ABANDONED = "draft", "published", "abandoned"


# ---------------------------------------------------------------- plans and edits


def insert_plan(session: Session, unit_code: str, title: str, author: str, base: dict[str, int]) -> int:
    """A new draft row on a unit, recording the version of every unit below it; its id."""
    return session.execute(
        text(
            """INSERT INTO plans (unit_code, title, author, base, created_at)
               VALUES (:unit, :title, :author, CAST(:base AS jsonb), clock_timestamp()) RETURNING id"""
        ),
        {"unit": unit_code, "title": title, "author": author, "base": json.dumps(base)},
    ).scalar_one()


def plan_row(session: Session, plan_id: int, *, lock: bool = False) -> Row:
    """The plan's row (locked for update if asked), or PlanNotFound."""
    row = session.execute(
        text(f"SELECT * FROM plans WHERE id = :id {'FOR UPDATE' if lock else ''}"), {"id": plan_id}
    ).first()
    if row is None:
        raise PlanNotFound(f"no plan {plan_id}")
    return row


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
    return [{**plan_summary(r), "edits": r.edit_count} for r in rows]


def plan_summary(plan: Row) -> dict[str, Any]:
    """A plan row as the API answers it."""
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


def insert_edit(session: Session, plan_id: int, edit: Edit, params: dict[str, Any], *, author: str) -> int:
    """Store an edit (with the codes it allocated among `params`) as the plan's next one; its id."""
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


def delete_edit_row(session: Session, edit_id: int) -> None:
    """Remove an edit's row."""
    session.execute(text("DELETE FROM plan_edits WHERE id = :id"), {"id": edit_id})


def mark_abandoned(session: Session, plan_id: int) -> None:
    """The plan is abandoned from now."""
    session.execute(
        text("UPDATE plans SET status = 'abandoned', abandoned_at = clock_timestamp() WHERE id = :id"),
        {"id": plan_id},
    )


def edit_rows(session: Session, plan_id: int) -> list[Row]:
    """The plan's edits in order: id, seq, operation, params, wkb, author, created_at."""
    return session.execute(
        text(
            """SELECT id, seq, operation, params, ST_AsBinary(geom) AS wkb, author, created_at
               FROM plan_edits WHERE plan_id = :plan ORDER BY seq"""
        ),
        {"plan": plan_id},
    ).all()


def edit_of(row: Row) -> Edit:
    """An edit row as the domain's Edit."""
    return Edit(Operation(row.operation), row.params, from_wkb(row.wkb))


# ---------------------------------------------------------------- the current units below a plan's unit


def current_below(session: Session, code: str) -> dict[str, tuple[UnitFeature, int]]:
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


def load_current(
    session: Session, root_code: str
) -> tuple[UnitFeature, dict[str, UnitFeature], dict[str, int]]:
    """The plan's unit, the current units below it and their versions (PlanConflict if it retired)."""
    found = unit_store.units_at(session, [root_code])
    if root_code not in found:
        raise PlanConflict(f"unit {root_code} has no current version", [{"code": root_code}])
    r = found[root_code]
    root = UnitFeature(r.code, r.name, Level(r.level), r.geometry, r.kind, r.special_type)
    below = current_below(session, root_code)
    return root, {c: f for c, (f, _) in below.items()}, {c: v for c, (_, v) in below.items()}


def taken(session: Session, root_code: str) -> set[str]:
    """Every code ever used below the root, current or retired: none is allocated again."""
    rows = session.execute(text("SELECT code FROM units WHERE code LIKE :p"), {"p": root_code + "%"})
    return {r.code for r in rows}


def current_versions(session: Session, codes: list[str]) -> dict[str, int]:
    """The current version of each of `codes` that has one."""
    rows = session.execute(
        text("SELECT code, version FROM unit_versions WHERE code = ANY(:codes) AND valid_to IS NULL"),
        {"codes": codes},
    ).all()
    return dict(rows)


def who_changed(session: Session, code: str) -> dict[str, Any]:
    """The published plan that last changed a unit, if a plan did."""
    row = session.execute(
        text(
            """SELECT p.id, p.title FROM plan_changes c JOIN plans p ON p.id = c.plan_id
               WHERE c.code = :code ORDER BY p.published_at DESC LIMIT 1"""
        ),
        {"code": code},
    ).first()
    return {"by_plan": row.id, "by_plan_title": row.title} if row else {"by_plan": None}


@contextmanager
def rehearsal(session: Session) -> Iterator[None]:
    """Run the block in a savepoint that is always rolled back: nothing it writes survives."""
    nested = session.begin_nested()
    try:
        yield
    finally:
        nested.rollback()


@contextmanager
def in_transaction(session: Session) -> Iterator[Session]:
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
