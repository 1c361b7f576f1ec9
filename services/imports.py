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
from geo.import_digest import feature_digests, rows_to_check
from geo.importer import (
    ImportRejected,
    check_features,
    code_texts,
    features_from_frame,
    parent_codes,
    read_source,
)
from geo.settings import Settings
from geo.validation import ValidationReport
from services import tile_precompute
from store import import_digests, people, units, users


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
    progress: Callable[[str], None] | None = None,
    outlines: bool = True,
) -> ImportResult:
    """Import a boundary file in one transaction of the caller's session; audited when an actor is given.

    Features whose digest is their unit's current version's are unchanged and skip conversion and
    checks (geo.import_digest); the others, and their children in the file, get every step.
    `progress` hears a line per stage; `outlines=False` leaves the map's simplified outlines to the
    caller (refresh_outlines, after the commit), so the boundaries are committed first.
    """
    say = progress or (lambda _line: None)
    clock = _Stages(say)
    frame, name = read_source(path, crs_name, settings=settings, override_crs=override_crs)
    codes = code_texts(frame)
    digests = feature_digests(frame, name, repair=repair)
    check = rows_to_check(codes, digests, import_digests.current(session))
    clock.done(f"read {len(frame):,} features of {path.name} ({name})")
    if len(check) < len(frame):
        skipped = len(frame) - len(check)
        say(f"  {skipped:,} unchanged since they were imported (same digest), {len(check):,} to check")
    report = ValidationReport()
    features = features_from_frame(frame.iloc[check], name, repair=repair, report=report, positions=check)
    del frame
    if not report.ok:
        raise ImportRejected(report)
    clock.done(f"converted {len(features):,} features to storage coordinates")
    parents = units.units_at(session, parent_codes(features))
    batch = {f.code for f in features}
    children = units.current_children(session, batch, except_codes=batch)
    features, report = check_features(features, report, parents, children, settings)
    clock.done(f"checked {len(features):,} features (codes, attributes, parents, children inside parents)")
    try:
        summary = units.write_units(session, features, valid_from=valid_from, warnings=report.warnings)
    except ValueError as exc:
        report.errors.append(str(exc))
        raise ImportRejected(report) from None
    position = dict(zip(codes, range(len(codes)), strict=False))
    import_digests.record(session, {f.code: digests[position[f.code]] for f in features})
    summary.unchanged[:0] = sorted(set(codes) - batch)
    clock.done(
        f"stored {len(summary.created):,} new, {len(summary.versioned):,} new versions, "
        f"{len(summary.unchanged):,} unchanged"
    )
    if outlines:
        refresh_outlines(session, say)
    result = ImportResult(len(codes), summary, report.repairs, report.warnings, name)
    if actor is not None:
        users.audit(session, actor, "units_import", path.name, _import_details(result, valid_from), ip)
    return result


def refresh_outlines(session: Session, progress: Callable[[str], None] | None = None) -> None:
    """Bring the map's simplified outlines up to date with the stored boundaries (the caller commits)."""
    done = tile_precompute.refresh(session)  # the map's simplified outlines follow the new boundaries
    if progress and done.rows:
        progress(
            f"  simplified the map's outlines: {done.top:,} above the county, {done.counties:,} counties, "
            f"{done.rows:,} rows in {done.seconds:.1f} s"
        )


class _Stages:
    """Says a line per stage with the seconds it took."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say, self.last = say, time.perf_counter()

    def done(self, line: str) -> None:
        now = time.perf_counter()
        self.say(f"  {line} in {now - self.last:.1f} s")
        self.last = now


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
