"""Importing boundaries and loading the demo county: read and check (geo.importer), write through
the store (store.units), record the audit entry. The caller commits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from geo import demo
from geo.importer import ImportRejected, check_features, parent_codes, read_features
from geo.settings import Settings
from services import tile_precompute
from store import people, units, users


@dataclass
class ImportResult:
    """What an import stored, repaired and warned about."""

    features: int
    summary: units.WriteSummary
    repairs: list[str] = field(default_factory=list)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    source_crs: str = ""


def import_units(
    session: Session,
    path: Path,
    crs_name: str | None = None,
    *,
    repair: bool = False,
    valid_from: datetime,
    settings: Settings,
    override_crs: bool = False,
    actor: str | None = None,
    ip: str | None = None,
) -> ImportResult:
    """Import a boundary file in one transaction of the caller's session; audited when an actor is given."""
    features, report, name = read_features(
        path, crs_name, repair=repair, settings=settings, override_crs=override_crs
    )
    parents = units.units_at(session, parent_codes(features))
    batch = {f.code for f in features}
    children = units.current_children(session, batch, except_codes=batch)
    features, report = check_features(features, report, parents, children, settings)
    try:
        summary = units.write_units(session, features, valid_from=valid_from, warnings=report.warnings)
    except ValueError as exc:
        report.errors.append(str(exc))
        raise ImportRejected(report) from None
    tile_precompute.refresh(session)  # the map's simplified outlines follow the new boundaries
    result = ImportResult(len(features), summary, report.repairs, report.warnings, name)
    if actor is not None:
        users.audit(session, actor, "units_import", path.name, _import_details(result, valid_from), ip)
    return result


def _import_details(result: ImportResult, valid_from: datetime) -> dict[str, object]:
    s = result.summary
    return {
        "crs": result.source_crs,
        "valid_from": valid_from.isoformat(),
        "created": len(s.created),
        "versioned": len(s.versioned),
        "unchanged": len(s.unchanged),
        "repairs": len(result.repairs),
    }

def load_demo(
    session: Session,
    settings: Settings,
    *,
    data_dir: Path = demo.DEMO_DIR,
    progress: Callable[[str], None] = print,
    actor: str | None = None,
) -> demo.DemoSummary:
    """Load (or confirm) the demo county (geo.demo): its layers, people and users; the caller commits."""
    started = time.perf_counter()
    summary = demo.DemoSummary()
    for name in demo.LAYERS:
        t0 = time.perf_counter()
        result = import_units(session, data_dir / name, valid_from=demo.DEMO_VALID_FROM, settings=settings)
        summary.created += len(result.summary.created)
        summary.versioned += len(result.summary.versioned)
        summary.unchanged += len(result.summary.unchanged)
        progress(
            f"  {name}: {result.features} units ({len(result.summary.created)} new, "
            f"{len(result.summary.unchanged)} unchanged) in {time.perf_counter() - t0:.1f} s"
        )
    if people.has_staff_below(session, demo.COUNTY_CODE):
        progress("  staff and party cells already loaded")
    else:
        summary.staff = people.add_staff(session, demo.read_csv(data_dir / demo.STAFF_FILE))
        summary.party_cells = people.add_party_cells(session, demo.read_csv(data_dir / demo.PARTY_FILE))
        progress(f"  {summary.staff} staff, {summary.party_cells} party cells")
    summary.seconds = time.perf_counter() - started
    existing = users.usernames(session)
    missing = [u for u in demo.DEMO_USERS if u[0] not in existing]
    for name, role, unit, department in missing:
        users.add_user(session, name, demo.DEMO_PASSWORD, role, unit, department)
    summary.users = len(missing)
    if actor is not None:
        users.audit(
            session,
            actor,
            "demo_load",
            demo.COUNTY_CODE,
            {"created": summary.created, "users": summary.users},
        )
    return summary
