"""`gridmap demo`, `import`, `export`, `assign`, `crosswalk`: boundary data in and out, points to grids."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from cli.common import DEFAULT_PORT, fail, friendly_errors, say, session_scope
from geo.codes import Level
from geo.crs import CoordinateError
from geo.settings import get_settings

# Added to the main app without a name: these are top-level commands (`gridmap import ...`).
data_app = typer.Typer()


@data_app.command()
def demo() -> None:
    """Load the demo county Xiangcheng (411681); running it again changes nothing."""
    from services.imports import load_demo

    settings = get_settings()
    with friendly_errors(), session_scope(settings) as session:
        say("loading the demo county 项城市 (411681) ...")
        summary = load_demo(session, settings, progress=say, actor="cli")
    say(
        f"demo ready in {summary.seconds:.1f} s: {summary.created} units created, "
        f"{summary.unchanged} unchanged. Next: `gridmap serve`, then open http://127.0.0.1:{DEFAULT_PORT}/docs"
    )
    if summary.users:
        from geo.demo import DEMO_PASSWORD, DEMO_USERS

        names = ", ".join(u[0] for u in DEMO_USERS)
        say(f"demo users ({names}) have the password {DEMO_PASSWORD!r}: demo only (GRIDMAP_DEMO=1)")


@data_app.command("import")
def import_file(
    path: Annotated[Path, typer.Argument(help="GeoJSON, GeoPackage or Shapefile with code, name, kind, ...")],
    crs: Annotated[
        str | None, typer.Option(help="wgs84, gcj02, bd09, cgcs2000 or EPSG:n; required if the file has none")
    ] = None,
    repair: Annotated[
        bool, typer.Option(help="Repair invalid polygons with make_valid and report each")
    ] = False,
    valid_from: Annotated[
        datetime | None, typer.Option(help="When the boundaries take effect (default: now)")
    ] = None,
    override_crs: Annotated[
        bool, typer.Option(help="Read the file in --crs although it declares another (or an unknown) CRS")
    ] = False,
) -> None:
    """Import units; all-or-nothing: one bad feature refuses the file and nothing is stored."""
    from services.imports import import_units, refresh_outlines

    settings = get_settings()
    when = (valid_from or datetime.now()).astimezone()
    t0 = time.perf_counter()
    say(f"importing {path.name} ...")
    with friendly_errors(), session_scope(settings) as session:
        result = import_units(
            session, path, crs, repair=repair, valid_from=when, settings=settings, override_crs=override_crs,
            actor="cli", progress=say, outlines=False,
        )  # fmt: skip
    # The boundaries are committed: the map's simplified outlines follow in a transaction of their
    # own (tiles draw the stored outlines until then), so a long import is not held open for them.
    with friendly_errors(), session_scope(settings) as session:
        refresh_outlines(session, say)
    for line in result.repairs:
        say(f"  repaired: {line}")
    for code, messages in result.warnings.items():
        for message in messages:
            say(f"  warning: {code} {message}")
    s = result.summary
    took = time.perf_counter() - t0
    if not s.created and not s.versioned:
        say(f"{path.name} unchanged: all {result.features} units as stored, nothing written ({took:.1f} s)")
        return
    say(
        f"imported {result.features} units from {path.name} ({result.source_crs}) in {took:.1f} s: "
        f"{len(s.created)} new, {len(s.versioned)} new versions, {len(s.unchanged)} unchanged"
    )


@data_app.command()
def export(
    out: Annotated[Path, typer.Argument(help="Output file")],
    level: Annotated[Level, typer.Option(help="Which level to export")] = Level.GRID,
    fmt: Annotated[str, typer.Option("--format", help="geojson or gpkg")] = "geojson",
) -> None:
    """Export the current units of one level (EPSG:4490 lon/lat)."""
    from services.units import export_units

    with friendly_errors(), session_scope(get_settings()) as session:
        count = export_units(session, level, fmt, out)
    if count == 0:
        fail(
            f"no current units at level {level}: nothing written "
            "(load some with `gridmap demo` or `gridmap import`)"
        )
    say(f"wrote {count} {level} units to {out}")


@data_app.command()
def assign(
    points: Annotated[Path, typer.Argument(help="CSV with columns id,lon,lat")],
    crs: Annotated[
        str, typer.Option(help="Coordinate system of lon/lat: wgs84, gcj02, bd09, cgcs2000, EPSG:n")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="CSV to write: id,status,grid_code,distance_m")
    ],
) -> None:
    """Assign many points to grids in-process (the same rule as /locate), with progress."""
    from geo.batch import assign_csv, check_points_csv, keep_the_heap
    from services.grid_index import batch_index

    settings = get_settings()
    with friendly_errors():
        check_points_csv(points, crs)  # a wrong file or CRS is said before the index is built
        with session_scope(settings) as session:
            loaded = batch_index(session, settings, say=say)
        how = "loaded (unchanged since it was built)" if loaded.cached else "indexed"
        say(f"  {len(loaded.index.codes)} grids {how} in {loaded.seconds:.1f} s")
        keep_the_heap()  # this process is the batch's: malloc may keep its heap between batches
        summary = assign_csv(points, output, crs, loaded.index, progress=sys.stderr.isatty(), say=say)
    say(summary)


@data_app.command()
def crosswalk(
    path: Annotated[
        Path, typer.Argument(help="A department's legacy grid layer (GeoJSON, GeoPackage, Shapefile)")
    ],
    crs: Annotated[
        str | None, typer.Option(help="wgs84, gcj02, bd09, cgcs2000 or EPSG:n; required if the file has none")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Writes OUT.csv and OUT.geojson (default: next to PATH)"),
    ] = None,
) -> None:
    """Relate a legacy grid layer to the unified grids (stores nothing): overlaps, shares, community lines."""
    from geo import crosswalk as cw
    from geo.importer import ImportRejected
    from services import crosswalk

    settings = get_settings()
    base = output or path.with_name(f"{path.stem}_crosswalk")
    try:
        legacy = cw.read_legacy(path, crs)
    except ImportRejected as exc:
        for line in exc.report.errors:
            say(f"  ✗ {line}")
        fail(str(exc).replace("import refused", "legacy layer refused"))
    except (CoordinateError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    with friendly_errors(), session_scope(settings) as session:
        entries, grids = crosswalk.relate(session, legacy, min_share=settings.crosswalk_min_share)
    base.parent.mkdir(parents=True, exist_ok=True)
    csv_path, geojson_path = base.with_suffix(".csv"), base.with_suffix(".geojson")
    rows = cw.write_csv(entries, csv_path)
    cw.write_geojson(entries, geojson_path)
    crossing = sum(e.crosses_community for e in entries)
    unmatched = sum(not e.overlaps for e in entries)
    say(
        f"{len(entries)} legacy polygons against {grids} unified grids: {rows} rows in {csv_path}, "
        f"features in {geojson_path}; {crossing} cross a community line, {unmatched} overlap no grid"
    )
