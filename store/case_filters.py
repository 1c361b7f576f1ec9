"""GET /cases' filter as SQL: one WHERE clause for the case list, the queue, the dashboard and
the statistics (who may see a case, and which cases lie under a unit)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from access.roles import Role, User
from cases.filters import CaseFilter as CaseFilter  # what a list of cases asks for: a pure description
from geo.codes import CODE_LENGTH, Level
from geo.crs import STORAGE_SRID


def in_unit_sql(unit_code: str | None, param: str = "unit_prefix") -> tuple[str, dict[str, Any]]:
    """SQL: case `c` belongs to the unit (none: all) — its responsible unit or grid lies under it;
    a case held by no unit and no grid (outside every unit) belongs to the county."""
    county_level = unit_code is None or len(unit_code) <= CODE_LENGTH[Level.COUNTY]
    return (
        f"(c.unit_code LIKE :{param} OR c.grid_code LIKE :{param}"
        f"{' OR (c.unit_code IS NULL AND c.grid_code IS NULL)' if county_level else ''})",
        {param: (unit_code or "") + "%"},
    )


def scope_sql(user: User) -> tuple[str, dict[str, Any]]:
    """SQL for access.roles.User.may_see_case: a department's cases, or the unit and everything below."""
    if user.role == Role.DEPARTMENT:
        return "c.department = :scope_department", {"scope_department": user.department}
    return in_unit_sql(user.unit_code, "scope_prefix")


def filter_sql(f: CaseFilter) -> tuple[str, dict[str, Any]]:
    """The WHERE clause over case `c` (and its parameters) for a filter; `:now` is the caller's."""
    where, params = ["true"], {}
    if f.scope is not None:
        condition, scope_params = scope_sql(f.scope)
        where.append(condition)
        params.update(scope_params)
    if f.status:
        where.append("c.status = ANY(:status)")
        params["status"] = list(f.status)
    if f.unit:  # a unit and everything under it: codes nest by prefix
        sql, more = in_unit_sql(f.unit)
        where.append(sql)
        params |= more
    if f.grid:
        where.append("c.grid_code = :grid")
        params["grid"] = f.grid
    if f.grids is not None:
        where.append("c.grid_code = ANY(:grids)")
        params["grids"] = f.grids
    if f.category:
        where.append("c.category LIKE :category_prefix")
        params["category_prefix"] = f.category + "%"
    if f.source:
        where.append("c.source = :source")
        params["source"] = f.source
    if f.overdue is not None:
        where.append("(c.stage_due_at IS NOT NULL AND c.stage_due_at < :now) = :overdue")
        params["overdue"] = f.overdue
    if f.light == "green":
        where.append("c.stage_yellow_at > :now")
    elif f.light == "yellow":
        where.append("c.stage_yellow_at <= :now AND c.stage_due_at >= :now")
    elif f.light == "red":
        where.append("c.stage_due_at < :now")
    if f.bbox:
        where.append(f"c.geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, {STORAGE_SRID})")
        params.update(dict(zip(("minx", "miny", "maxx", "maxy"), f.bbox, strict=True)))
    if f.reported_from:
        where.append("c.reported_at >= :reported_from")
        params["reported_from"] = f.reported_from
    if f.reported_to:
        where.append("c.reported_at < :reported_to")
        params["reported_to"] = f.reported_to
    return " AND ".join(where), params


def counted_page(
    session: Session, f: CaseFilter, now: datetime, columns: str, order: str, offset: int = 0
) -> tuple[int, list[Any]]:
    """How many cases match `f` at `now`, and the `f.limit` rows of `columns` from `offset` in `order`
    (the two statements every list of cases makes: the list, the map's points)."""
    where, params = filter_sql(f)
    params["now"] = now
    total = session.execute(text(f"SELECT count(*) FROM cases c WHERE {where}"), params).scalar_one()
    rows = session.execute(
        text(f"SELECT {columns} FROM cases c WHERE {where} ORDER BY {order} LIMIT :limit OFFSET :offset"),
        {**params, "limit": f.limit, "offset": offset},
    ).all()
    return total, list(rows)
