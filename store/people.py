"""Staff and party cells of units. Phones are personal data: stored, never returned by default."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import text
from sqlalchemy.orm import Session

from errors import Invalid
from geo import crs
from geo.crs import STORAGE_SRID
from geo.people import PartyCellKind, StaffRole


class PeopleError(Invalid):
    """A staff or party-cell row that cannot be stored; the message names the row."""


def _existing_units(session: Session, codes: set[str]) -> set[str]:
    rows = session.execute(text("SELECT code FROM units WHERE code = ANY(:c)"), {"c": sorted(codes)})
    return {r.code for r in rows}


def _check_units(session: Session, rows: list[Mapping[str, str]], what: str) -> None:
    known = _existing_units(session, {r["unit_code"] for r in rows})
    for number, row in enumerate(rows, 1):
        if row["unit_code"] not in known:
            raise PeopleError(f"{what} row {number}: unit {row['unit_code']!r} does not exist")


def add_staff(session: Session, rows: Iterable[Mapping[str, str]]) -> int:
    """Add staff rows (unit_code, role, name, phone); returns how many were added."""
    rows = list(rows)
    _check_units(session, rows, "staff")
    roles = set(StaffRole)
    for number, row in enumerate(rows, 1):
        if row["role"] not in roles:
            raise PeopleError(f"staff row {number}: role {row['role']!r} is not one of {', '.join(roles)}")
    session.execute(
        text("INSERT INTO staff (unit_code, role, name, phone) VALUES (:unit_code, :role, :name, :phone)"),
        [{k: row.get(k) or None for k in ("unit_code", "role", "name", "phone")} for row in rows],
    )
    return len(rows)


def add_party_cells(session: Session, rows: Iterable[Mapping[str, str]]) -> int:
    """Add party cells (unit_code, kind, name, lon, lat, members); a central household needs lon/lat."""
    rows = list(rows)
    _check_units(session, rows, "party cell")
    params = []
    for number, row in enumerate(rows, 1):
        if row["kind"] not in set(PartyCellKind):
            raise PeopleError(
                f"party cell row {number}: kind {row['kind']!r} is not one of {list(PartyCellKind)}"
            )
        has_point = bool(row.get("lon")) and bool(row.get("lat"))
        if (row["kind"] == PartyCellKind.CENTRAL_HOUSEHOLD) != has_point:
            raise PeopleError(f"party cell row {number}: only a central household has (and needs) lon/lat")
        if has_point:
            crs.check_plausible([float(row["lon"])], [float(row["lat"])])
        params.append(
            {
                "unit_code": row["unit_code"],
                "kind": row["kind"],
                "name": row["name"],
                "members": int(row["members"]) if row.get("members") else None,
                "lon": float(row["lon"]) if has_point else None,
                "lat": float(row["lat"]) if has_point else None,
            }
        )
    session.execute(
        text(
            f"""INSERT INTO party_cells (unit_code, kind, name, members, location)
                VALUES (:unit_code, :kind, :name, :members,
                        CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL
                             ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), {STORAGE_SRID}) END)"""
        ),
        params,
    )
    return len(params)


def has_staff_below(session: Session, code: str) -> bool:
    """True when any staff member works in `code` or a unit below it."""
    return session.execute(
        text("SELECT EXISTS (SELECT 1 FROM staff WHERE unit_code LIKE :p)"), {"p": code + "%"}
    ).scalar_one()
