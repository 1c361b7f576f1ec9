"""Coverage groups on the store, for the incremental run after a publish: a few parents with their
children, the stored findings that might come from them, and a report saved as its previous one with
those groups replaced: a new report of the previous one's chain (store/coverage_chain.py) that
stores the fresh findings and retires the replaced ones, the rest kept where they are."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo import coverage
from geo.codes import PARENT_LENGTH
from geo.crs import STORAGE_SRID
from store.coverage import load_units, report_findings_where

# A finding's first unit, as the index coverage_findings_unit_idx has it (byte order, any collation).
FIRST_UNIT = 'CAST(f.units[1] AS text) COLLATE "C"'
# A parent's code length -> how many digits its children add.
CHILD_DIGITS = {p: c - p for c, p in PARENT_LENGTH.items()}


def load_groups(
    session: Session, parents: Sequence[str]
) -> dict[str, tuple[coverage.Unit | None, list[coverage.Unit]]]:
    """Each parent's current unit (None if retired) and its current direct children, with people facts."""
    out = {}
    for code in sorted(parents):
        digits = CHILD_DIGITS.get(len(code), 0)
        where = "v.code = :code OR v.code LIKE :children"
        units = load_units(session, code, where, {"code": code, "children": code + "_" * digits})
        own = next((u for u in units if u.code == code), None)
        out[code] = own, [u for u in units if u.code != code] if digits else []
    return out


def group_findings(
    session: Session, report_id: int, groups: Sequence[str]
) -> list[tuple[int, coverage.Finding]]:
    """(id, finding) of a stored report whose first unit lies under one of `groups` (a superset of
    the findings those groups produced: the caller tells them apart with geo.coverage_groups)."""
    # Codes are digits and ':' follows '9': a code lies under `g` when it is in [g, g + ':'), a
    # range of the index on (report_id, first unit) (migration 0023); nested groups are searched
    # once, under the outer one.
    outer = [g for g in sorted(set(groups)) if not any(g != o and g.startswith(o) for o in groups)]
    return report_findings_where(
        session,
        report_id,
        "true",
        {"prefixes": outer},
        joined=f"JOIN unnest(CAST(:prefixes AS text[])) AS g(code) ON {FIRST_UNIT} >= g.code "
        f"AND {FIRST_UNIT} < g.code || ':'",
    )


def save_merged(
    session: Session,
    unit: str,
    previous: int,
    replaced: Sequence[int],
    fresh: Sequence[coverage.Finding],
    summary: dict[str, Any],
    tolerances: coverage.Tolerances,
) -> int | None:
    """A new report of `unit` in the chain of `previous`: `fresh` stored, `replaced` (findings of
    `previous`) retired in it, the rest kept where they are (store/coverage_chain.py); returns its
    id, or None when `previous` was refreshed already (nothing written then)."""
    report_id = session.execute(
        text(
            """INSERT INTO coverage_reports (unit_code, as_of, tolerances, summary, base_report_id, grew_from)
               SELECT :unit, NULL, CAST(:tolerances AS jsonb), CAST(:summary AS jsonb), p.base_report_id, p.id
               FROM coverage_reports p WHERE p.id = :previous
               ON CONFLICT (grew_from) DO NOTHING RETURNING id"""
        ),
        {
            "unit": unit,
            "previous": previous,
            "tolerances": json.dumps(tolerances.as_dict()),
            "summary": json.dumps(summary),
        },
    ).scalar_one_or_none()
    if report_id is None:
        return None
    session.execute(
        text(
            """UPDATE coverage_findings SET retired_in = :report
               WHERE id = ANY(:replaced) AND retired_in IS NULL"""
        ),
        {"report": report_id, "replaced": list(replaced)},
    )
    session.execute(
        text(
            f"""INSERT INTO coverage_findings (report_id, kind, units, area_m2, new, detail, geom)
                SELECT :report, f.kind, ARRAY(SELECT jsonb_array_elements_text(f.units)), f.area_m2,
                       f.new, f.detail,
                       CASE WHEN f.wkb IS NULL THEN NULL
                            ELSE ST_GeomFromWKB(decode(f.wkb, 'hex'), {STORAGE_SRID}) END
                FROM jsonb_to_recordset(CAST(:findings AS jsonb))
                     AS f(kind text, units jsonb, area_m2 float8, new boolean, detail jsonb, wkb text)"""
        ),
        {"report": report_id, "findings": json.dumps([_row(f) for f in fresh], ensure_ascii=False)},
    )
    return report_id


def _row(f: coverage.Finding) -> dict[str, Any]:
    wkb = None if f.geometry is None else shapely.to_wkb(f.geometry, hex=True, output_dimension=2)
    return {"kind": f.kind.value, "units": list(f.units), "area_m2": f.area_m2, "new": bool(f.new),
            "detail": dict(f.detail), "wkb": wkb}  # fmt: skip


def latest_reports(session: Session, units: Sequence[str]) -> list[tuple[str, int]]:
    """(unit, id) of the latest stored report of each of `units` that has one, when that report is of
    the current boundaries (a report as of a date is left alone)."""
    rows = session.execute(
        text(
            """SELECT DISTINCT ON (unit_code) unit_code, id, as_of FROM coverage_reports
               WHERE unit_code = ANY(:units) ORDER BY unit_code, created_at DESC, id DESC"""
        ),
        {"units": list(units)},
    ).all()
    return [(r.unit_code, r.id) for r in rows if r.as_of is None]


def report_summary(session: Session, report_id: int) -> dict[str, Any]:
    """The summary stored with a report."""
    return session.execute(
        text("SELECT summary FROM coverage_reports WHERE id = :id"), {"id": report_id}
    ).scalar_one()
