"""Coverage analysis on the store: load a unit's subtree with its facts, analyse it, keep dated reports.

The analysis itself is geo.coverage (no database). Here: the units below a code (current
versions or as of a date) with their staff roles, party cells and households; the open cases
that no grid holds (unassigned or snapped); reports stored per unit, so that each finding can
say whether it is new since the unit's previous report, and which earlier findings are resolved.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from cases.lifecycle import OPEN_STATUSES
from geo import coverage, coverage_compare
from geo.assignment import Status
from geo.codes import CODE_LENGTH, Level
from geo.crs import STORAGE_SRID
from store.coverage_chain import NEW_ROOT_ID, findings_of, params_of
from store.geometry import from_wkb, from_wkb_array
from store.patrols import stale_grid_findings
from store.units import valid_at_sql

# Cases no grid holds: these are the ones a gap explains.
UNHELD = (Status.UNASSIGNED.value, Status.SNAPPED.value)


@dataclass
class CoverageRun:
    """One analysis of a unit's subtree, compared with the unit's last stored report (new, resolved)."""

    unit: str
    as_of: datetime | None
    tolerances: coverage.Tolerances
    findings: list[coverage.Finding]
    previous_report: int | None = None
    resolved: list[coverage.Finding] = field(default_factory=list)  # of the previous report, gone now
    report_id: int | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, dict[str, Any]]:
        """Count, new, resolved (and m²) per kind."""
        return coverage_compare.summary_with_resolved(self.findings, self.resolved)

    def as_dict(self) -> dict[str, Any]:
        """The API/CLI answer: unit, dates, summary, the findings and the resolved ones as GeoJSON."""
        return {
            "unit": self.unit,
            "at": self.as_of.isoformat() if self.as_of else None,
            "report_id": self.report_id,
            "previous_report": self.previous_report,
            "summary": self.summary(),
            "findings": coverage.feature_collection(self.findings),
            "resolved": coverage.feature_collection(self.resolved),
        }


def load_subtree(session: Session, code: str, at: datetime | None = None) -> list[coverage.Unit]:
    """The unit `code` and every unit below it (current, or as of `at`), with grids' people facts."""
    return load_units(session, code, "v.code LIKE :prefix", {"prefix": code + "%"}, at)


def load_units(
    session: Session, under: str, where: str, params: dict[str, Any], at: datetime | None = None
) -> list[coverage.Unit]:
    """The units matching `where` (SQL on unit_versions v), all below `under`, with people facts."""
    rows = session.execute(
        text(
            f"""SELECT v.code, v.kind, v.households, ST_AsBinary(v.geom) AS wkb
                FROM unit_versions v
                WHERE ({where}) AND {valid_at_sql("v", "at" if at else None)}
                ORDER BY v.code"""
        ),
        {**params, "at": at},
    ).all()
    geometries = from_wkb_array([r.wkb for r in rows]) if rows else []
    staff = _sets(session, "SELECT unit_code, role FROM staff WHERE unit_code LIKE :prefix", under)
    party = _sets(session, "SELECT unit_code, kind FROM party_cells WHERE unit_code LIKE :prefix", under)
    units = []
    for row, geometry in zip(rows, geometries, strict=True):
        is_grid = len(row.code) == CODE_LENGTH[Level.GRID]
        units.append(
            coverage.Unit(
                code=row.code,
                geometry=geometry,
                kind=row.kind,
                households=row.households,
                # People are known for every grid in the store: no row means none.
                staff=staff.get(row.code, frozenset()) if is_grid else None,
                party_cells=party.get(row.code, frozenset()) if is_grid else None,
            )
        )
    return units


def _sets(session: Session, sql: str, code: str) -> dict[str, frozenset[str]]:
    """unit code -> the set of values of the second column."""
    found: dict[str, set[str]] = {}
    for unit_code, value in session.execute(text(sql), {"prefix": code + "%"}):
        found.setdefault(unit_code, set()).add(value)
    return {k: frozenset(v) for k, v in found.items()}


def unheld_cases(session: Session, code: str, at: datetime | None = None) -> list[coverage.CasePoint]:
    """Open cases that no grid holds (unassigned or snapped) inside the unit's polygon."""
    rows = session.execute(
        text(
            f"""SELECT c.id, ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat
                FROM cases c JOIN unit_versions v ON v.code = :code
                WHERE {valid_at_sql("v", "at" if at else None)}
                  AND c.status = ANY(:open) AND c.assign_status = ANY(:unheld)
                  AND ST_Intersects(c.geom, v.geom)
                ORDER BY c.id"""
        ),
        {"code": code, "at": at, "open": OPEN_STATUSES, "unheld": list(UNHELD)},
    )
    return [coverage.CasePoint(r.id, r.lon, r.lat) for r in rows]


def run_coverage(
    session: Session,
    code: str,
    tolerances: coverage.Tolerances,
    *,
    at: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CoverageRun:
    """Analyse the subtree of `code` at every level; compared with the unit's last report."""
    t0 = time.perf_counter()
    units = load_subtree(session, code, at)
    cases = unheld_cases(session, code, at)
    t1 = time.perf_counter()
    findings = coverage.analyse_tree(units, tolerances, cases=cases, progress=progress)
    return compared_run(session, code, tolerances, at, findings, {"load_s": t1 - t0, "analyse_s": 0.0}, t1)


def compared_run(
    session: Session,
    code: str,
    tolerances: coverage.Tolerances,
    at: datetime | None,
    findings: list[coverage.Finding],
    timings: dict[str, float],
    started: float,
) -> CoverageRun:
    """A run of `code` from its findings (plus the patrol findings of now), compared with its last
    report; `started` (perf_counter) is when the analysis began, for the timings."""
    if at is None and tolerances.patrol_stale_days:  # patrols are kept for a while only: now, not "as of"
        findings += stale_grid_findings(session, code, tolerances.patrol_stale_days)
    t2 = time.perf_counter()
    previous_id, previous = last_report(session, code)
    compared = coverage_compare.compare(findings, previous)
    timings = {**timings, "analyse_s": timings["analyse_s"] + t2 - started}
    timings["compare_s"] = time.perf_counter() - t2
    return CoverageRun(
        code, at, tolerances, compared.findings, previous_id, compared.resolved, timings=timings
    )


def last_report(session: Session, code: str) -> tuple[int | None, list[coverage.Finding]]:
    """The id and findings of the unit's latest stored report (None, [] when there is none)."""
    report_id = session.execute(
        text(
            """SELECT id FROM coverage_reports WHERE unit_code = :code
               ORDER BY created_at DESC, id DESC LIMIT 1"""
        ),
        {"code": code},
    ).scalar_one_or_none()
    if report_id is None:
        return None, []
    return report_id, report_findings(session, report_id)


def report_findings(session: Session, report_id: int) -> list[coverage.Finding]:
    """The findings of a stored report, in the order they were stored."""
    return [f for _, f in report_findings_where(session, report_id, "true", {})]


def report_findings_where(
    session: Session, report_id: int, where: str, params: dict[str, Any], joined: str = ""
) -> list[tuple[int, coverage.Finding]]:
    """(id, finding) of the stored report's findings `f` matching `where` (SQL, after the `joined`
    clause), in the order stored."""
    rows = session.execute(
        text(
            f"""SELECT f.id, f.kind, f.units, f.area_m2, f.detail, f.new, ST_AsBinary(f.geom) AS wkb
                FROM {findings_of(":id", ":chain")} AS f {joined} WHERE ({where}) ORDER BY f.id"""
        ),
        {**params, **params_of(session, report_id, "id", "chain")},
    )
    return [
        (
            r.id,
            coverage.Finding(
                coverage.Kind(r.kind), tuple(r.units), from_wkb(r.wkb), r.area_m2, r.detail, new=r.new
            ),
        )
        for r in rows
    ]


def save_report(session: Session, run: CoverageRun) -> int:
    """Store a run as a dated report, the root of a chain of its own, in one statement (atomic even
    in autocommit); returns its id."""
    findings = [
        {
            "kind": f.kind.value,
            "units": list(f.units),
            "area_m2": f.area_m2,
            "new": bool(f.new),
            "detail": dict(f.detail),
            "wkb": None if f.geometry is None else shapely.to_wkb(f.geometry, hex=True, output_dimension=2),
        }
        for f in run.findings
    ]
    report_id = session.execute(
        text(
            f"""WITH root AS ({NEW_ROOT_ID}),
                report AS (
                    INSERT INTO coverage_reports (id, base_report_id, unit_code, as_of, tolerances, summary)
                    SELECT root.id, root.id, :unit, :as_of, CAST(:tolerances AS jsonb),
                           CAST(:summary AS jsonb)
                    FROM root RETURNING id),
                stored AS (
                    INSERT INTO coverage_findings (report_id, kind, units, area_m2, new, detail, geom)
                    SELECT report.id, f.kind, ARRAY(SELECT jsonb_array_elements_text(f.units)), f.area_m2,
                           f.new, f.detail,
                           CASE WHEN f.wkb IS NULL THEN NULL
                                ELSE ST_GeomFromWKB(decode(f.wkb, 'hex'), {STORAGE_SRID}) END
                    FROM report, jsonb_to_recordset(CAST(:findings AS jsonb))
                         AS f(kind text, units jsonb, area_m2 float8, new boolean, detail jsonb, wkb text))
                SELECT id FROM report"""
        ),
        {
            "unit": run.unit,
            "as_of": run.as_of,
            "tolerances": json.dumps(run.tolerances.as_dict()),
            "summary": json.dumps(run.summary()),
            "findings": json.dumps(findings, ensure_ascii=False),
        },
    ).scalar_one()
    run.report_id = report_id
    return report_id


def report_unit(session: Session, report_id: int) -> str | None:
    """The unit a stored report is about (None: no such report)."""
    return session.execute(
        text("SELECT unit_code FROM coverage_reports WHERE id = :id"), {"id": report_id}
    ).scalar_one_or_none()


def previous_report_of(session: Session, report_id: int) -> int | None:
    """The id of the unit's report saved just before `report_id` (None for its first)."""
    return session.execute(
        text(
            """SELECT p.id FROM coverage_reports r
               JOIN coverage_reports p ON p.unit_code = r.unit_code
                AND (p.created_at, p.id) < (r.created_at, r.id)
               WHERE r.id = :id ORDER BY p.created_at DESC, p.id DESC LIMIT 1"""
        ),
        {"id": report_id},
    ).scalar_one_or_none()


def compare_report(session: Session, report_id: int, unit: str) -> dict[str, Any]:
    """A stored report against its unit's previous one: summary, new and resolved findings."""
    previous = previous_report_of(session, report_id)
    earlier = report_findings(session, previous) if previous is not None else []
    comparison = coverage_compare.compare(report_findings(session, report_id), earlier)
    return {"unit": unit, "report_id": report_id, "previous_report": previous, **comparison.as_dict()}


def list_reports(session: Session, code: str) -> list[dict[str, Any]]:
    """The stored reports of a unit, newest first: id, dates, tolerances and summary."""
    rows = session.execute(
        text(
            """SELECT id, unit_code, created_at, as_of, tolerances, summary FROM coverage_reports
               WHERE unit_code = :code ORDER BY created_at DESC, id DESC"""
        ),
        {"code": code},
    )
    return [
        {
            "id": r.id,
            "unit": r.unit_code,
            "created_at": r.created_at.isoformat(),
            "at": r.as_of.isoformat() if r.as_of else None,
            "tolerances": r.tolerances,
            "summary": r.summary,
        }
        for r in rows
    ]


def root_units(session: Session, at: datetime | None = None) -> list[coverage.Unit]:
    """The units with no stored parent (the counties of a deployment without a province unit)."""
    rows = session.execute(
        text(
            f"""SELECT v.code, ST_AsBinary(v.geom) AS wkb
                FROM units u JOIN unit_versions v USING (code)
                WHERE u.parent_code IS NULL AND {valid_at_sql("v", "at" if at else None)}
                ORDER BY v.code"""
        ),
        {"at": at},
    ).all()
    geometries = from_wkb_array([r.wkb for r in rows]) if rows else []
    return [coverage.Unit(code=r.code, geometry=g) for r, g in zip(rows, geometries, strict=True)]


def region_groups(
    session: Session, at: datetime | None = None
) -> list[tuple[coverage.Unit, list[coverage.Unit]]]:
    """Each stored province with its cities, each city with its counties (outlines only): what
    `gridmap coverage` checks between the counties of a city and the cities of a province."""
    rows = session.execute(
        text(
            f"""SELECT u.code, u.level, ST_AsBinary(v.geom) AS wkb
                FROM units u JOIN unit_versions v USING (code)
                WHERE u.level IN ('province', 'city', 'county') AND {valid_at_sql("v", "at" if at else None)}
                ORDER BY u.code"""
        ),
        {"at": at},
    ).all()
    geometries = from_wkb_array([r.wkb for r in rows]) if rows else []
    found = {r.code: coverage.Unit(code=r.code, geometry=g) for r, g in zip(rows, geometries, strict=True)}
    regions = [r.code for r in rows if r.level in ("province", "city")]
    # A region's children: the stored units one level down whose code starts with its code.
    return [
        (found[code], [u for c, u in found.items() if len(c) == len(code) + 2 and c.startswith(code)])
        for code in regions
    ]


def county_codes(session: Session) -> list[str]:
    """Codes of the current counties (what `gridmap coverage` analyses without --unit)."""
    return list(
        session.execute(
            text(
                """SELECT u.code FROM units u JOIN unit_versions v USING (code)
                   WHERE u.level = 'county' AND v.valid_to IS NULL ORDER BY u.code"""
            )
        ).scalars()
    )


def county_codes_under(session: Session, code: str, at: datetime | None = None) -> list[str]:
    """Codes of the counties whose code starts with `code` (current, or as of `at`), in order."""
    return list(
        session.execute(
            text(
                f"""SELECT v.code FROM units u JOIN unit_versions v USING (code)
                    WHERE u.level = 'county' AND v.code LIKE :prefix
                      AND {valid_at_sql("v", "at" if at else None)} ORDER BY v.code"""
            ),
            {"prefix": code + "%", "at": at},
        ).scalars()
    )


def grids_near(
    session: Session, geometries: Sequence[shapely.Geometry], at: datetime | None = None
) -> list[coverage.Unit]:
    """Current (or dated) grids whose box meets the extent of `geometries` (for the crosswalk)."""
    if not geometries:
        return []
    minx, miny, maxx, maxy = shapely.total_bounds(list(geometries))
    rows = session.execute(
        text(
            f"""SELECT v.code, v.kind, ST_AsBinary(v.geom) AS wkb
                FROM unit_versions v JOIN units u USING (code)
                WHERE u.level = 'grid' AND {valid_at_sql("v", "at" if at else None)}
                  AND v.geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, {STORAGE_SRID})
                ORDER BY v.code"""
        ),
        {"minx": minx, "miny": miny, "maxx": maxx, "maxy": maxy, "at": at},
    ).all()
    geometries_out = from_wkb_array([r.wkb for r in rows]) if rows else []
    return [coverage.Unit(r.code, g, kind=r.kind) for r, g in zip(rows, geometries_out, strict=True)]
