"""`gridmap coverage`: gaps, overlaps, slivers and the other findings, per unit or for every county."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy.orm import Session

from cli.common import fail, friendly_errors, say, session_scope
from geo.settings import get_settings

if TYPE_CHECKING:  # imported by the command itself, to keep every command's start quick
    from geo.coverage import Finding, Tolerances
    from geo.settings import Settings
    from services.coverage import CoverageRun

# Added to the main app without a name: `gridmap coverage` is a top-level command.
coverage_app = typer.Typer()


def _coverage_table(unit: str, summary: dict, seconds: float) -> None:
    """Counts and areas per kind, as a rich table (plain text when not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"coverage of {unit} ({seconds:.1f} s)")
    for column in ("kind", "count", "new", "resolved", "area m²"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    for kind, entry in summary.items():
        area = entry.get("area_m2")
        counts = (str(entry[k]) for k in ("count", "new", "resolved"))
        table.add_row(kind, *counts, "" if area is None else f"{area:,.1f}")
    Console(soft_wrap=True).print(table)


# Findings beyond this many go to a file, not to the terminal.
LONG_FINDINGS = 1000


@coverage_app.command()
def coverage(
    unit: Annotated[
        str | None, typer.Option(help="Unit code to analyse with everything below it (default: each county)")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or geojson (findings to stdout)")] = "table",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the findings (GeoJSON) to this file")
    ] = None,
    save: Annotated[bool, typer.Option(help="Store the result as a dated report of the unit")] = False,
    at: Annotated[datetime | None, typer.Option(help="Analyse the boundaries valid at this date")] = None,
    after_plan: Annotated[
        int | None,
        typer.Option(help="Refresh the stored reports above what this published plan changed, and no more"),
    ] = None,
) -> None:
    """Coverage analysis: gaps, overlaps, slivers, overhangs, staff, party cells, size norm, cases.

    Over several units (every county by default) it prints a line per unit and the totals per kind
    and level, checks the top-level units against each other for overlaps, and writes findings
    that would not fit a screen to a file.
    """
    from geo.coverage import Tolerances, feature_collection
    from services import coverage_regions as regions_of
    from services.units import unit_exists

    if fmt not in ("table", "geojson"):
        fail(f"unknown format {fmt!r}: use table or geojson")
    settings = get_settings()
    tolerances = Tolerances.from_settings(settings)
    if after_plan is not None:
        _refresh_after(after_plan, tolerances, settings)
        return
    when = at.astimezone() if at else None
    with friendly_errors(), session_scope(settings) as session:
        codes = [unit] if unit else regions_of.county_codes(session)
        if unit and not unit_exists(session, unit, when):
            fail(f"no unit with code {unit}")
        if not codes:
            fail("no units stored yet: load some with `gridmap demo` or `gridmap import`")
        findings = []
        for code in codes:
            run = _coverage_of(session, code, tolerances, when, save=save)
            findings += run.findings
            if fmt == "table":
                if len(codes) == 1:
                    _coverage_table(code, run.as_dict()["summary"], sum(run.timings.values()))
                else:
                    say(_coverage_line(code, run))
        if not unit:
            regions = regions_of.between_regions(session, tolerances, when)
            if regions:
                say(f"  {len(regions)} finding(s) between the counties of a city or the cities of a province")
            findings += regions
            between = regions_of.between_roots(session, tolerances, when)
            if between:
                say(f"  {len(between)} overlap(s) between top-level units (no parent compares them)")
            findings += between
    if fmt == "table" and len(codes) > 1:
        _coverage_totals(findings)
    _write_findings(feature_collection(findings), output, to_stdout=fmt == "geojson")


def _refresh_after(plan_id: int, tolerances: Tolerances, settings: Settings) -> None:
    """`--after-plan`: the changed groups of a published plan merged into the reports above them."""
    from services import coverage_refresh

    with friendly_errors(), session_scope(settings) as session:
        done = coverage_refresh.refresh_after_publish(session, plan_id, tolerances)
    if not done:
        say(f"plan {plan_id}: no stored report of the current boundaries above what it changed")
    for r in done:
        seconds = sum(r.timings.values())
        say(
            f"  {r.unit}: report {r.report_id} (from {r.previous_report}), {len(r.groups)} group(s) again, "
            f"{len(r.findings)} finding(s) there ({sum(bool(f.new) for f in r.findings)} new, "
            f"{len(r.resolved)} resolved), {seconds:.2f} s"
        )


def _coverage_of(
    session: Session, code: str, tolerances: Tolerances, when: datetime | None, *, save: bool
) -> CoverageRun:
    """One unit's coverage run, with progress for large units, saved as a report if asked."""
    from services import coverage as service

    def progress(done: int, total: int) -> None:
        if total >= 1000:  # say nothing for the blink of a small unit
            say(f"  {code}: {done:,}/{total:,} parent units analysed")

    run = service.coverage_of(session, code, tolerances, at=when, save=save, actor="cli", progress=progress)
    if save:
        say(f"  saved report {run.report_id} of {code}")
    return run


def _coverage_line(code: str, run: CoverageRun) -> str:
    """One unit's findings on one line: counts of the kinds present."""
    summary = run.as_dict()["summary"]
    present = ", ".join(f"{e['count']} {kind}" for kind, e in summary.items() if e["count"])
    return f"  {code}: {present or 'no findings'} ({sum(run.timings.values()):.1f} s)"


def _coverage_totals(findings: list[Finding]) -> None:
    """Counts and areas per kind and level, as a rich table."""
    from rich.console import Console
    from rich.table import Table

    from geo.coverage_totals import totals

    table = Table(title=f"coverage totals: {len(findings):,} findings")
    for column in ("kind", "level", "count", "area m²"):
        table.add_column(column, justify="left" if column in ("kind", "level") else "right")
    for kind, levels in totals(findings).items():
        for level, entry in levels.items():
            area = f"{entry['area_m2']:,.1f}" if entry["area_m2"] else ""
            table.add_row(kind, level, f"{entry['count']:,}", area)
    Console(soft_wrap=True).print(table)


def _write_findings(collection: dict, output: Path | None, *, to_stdout: bool) -> None:
    """Findings to `output`, else to stdout when asked and short enough, else to a file named here."""
    count = len(collection["features"])
    if output is None and to_stdout and count <= LONG_FINDINGS:
        typer.echo(json.dumps(collection, ensure_ascii=False))
        return
    if output is None and not (to_stdout and count):
        return
    target = output or Path(f"coverage-{datetime.now():%Y%m%d-%H%M%S}.geojson")
    target.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
    say(f"{count:,} findings written to {target}" + ("" if output else f" (more than {LONG_FINDINGS:,})"))
