"""`gridmap`: the command line of the service (database, demo, import/export, batch assignment, serve)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from geo.codes import Level
from geo.crs import CoordinateError
from geo.db.cluster import ClusterError, EmbeddedCluster
from geo.db.engine import DatabaseError, engine_for, resolve_database_url, session_factory
from geo.db.migrate import upgrade
from geo.settings import Settings, get_settings

app = typer.Typer(
    help="Grid-mapping service for grid-based community governance (网格化治理).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(
    help="The database: the embedded PostGIS cluster, or the one GRIDMAP_DATABASE_URL names."
)
app.add_typer(db_app, name="db")

DEFAULT_PORT = 8000


def say(message: str) -> None:
    """Progress and results for people go to stderr, so stdout stays clean for data."""
    typer.echo(message, err=True)


def fail(message: str, code: int = 1) -> None:
    """Stop with a message that says what went wrong (no traceback)."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def ready_url(settings: Settings) -> str:
    """The database URL, with the embedded cluster started and the schema migrated."""
    url = resolve_database_url(settings, progress=say)
    upgrade(url)
    return url


@contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """A session on the ready database, committed on success and rolled back on any error."""
    with session_factory(engine_for(ready_url(settings)))() as session, session.begin():
        yield session


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn the errors a user can fix into a message and exit code 1."""
    from geo.db.people import PeopleError
    from geo.importer import ImportRejected

    try:
        yield
    except ImportRejected as exc:
        for line in exc.report.errors:
            say(f"  ✗ {line}")
        fail(f"{exc}. Fix the file (or use --repair for invalid polygons) and run the import again.")
    except (ClusterError, DatabaseError, CoordinateError, PeopleError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))


@db_app.command("start")
def db_start() -> None:
    """Start the embedded PostGIS cluster (created on first use) and migrate it."""
    settings = get_settings()
    with friendly_errors():
        if settings.database_url:
            fail("GRIDMAP_DATABASE_URL is set: gridmap uses that server and never starts its own")
        ready_url(settings)
        say(f"embedded PostGIS running: {EmbeddedCluster(settings).status().message}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded cluster (its data stays for the next start)."""
    with friendly_errors():
        EmbeddedCluster(get_settings()).stop()
        say("embedded PostGIS stopped")


@db_app.command("status")
def db_status() -> None:
    """Say which database is used and whether it is running."""
    settings = get_settings()
    if settings.database_url:
        say("using GRIDMAP_DATABASE_URL (an external server)")
        return
    with friendly_errors():
        status = EmbeddedCluster(settings).status()
        say(f"embedded PostGIS: {status.message}")
        if not status.running:
            raise typer.Exit(3)  # like pg_ctl status: scripts can test it


@db_app.command("url")
def db_url() -> None:
    """Print the SQLAlchemy URL of the database (for psql, scripts, GRIDMAP_DATABASE_URL)."""
    settings = get_settings()
    with friendly_errors():
        typer.echo(settings.database_url or EmbeddedCluster(settings).url())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations (which also create PostGIS) to the configured or embedded database."""
    with friendly_errors():
        ready_url(get_settings())
        say("schema is up to date")


@app.command()
def demo() -> None:
    """Load the demo county Xiangcheng (411681); running it again changes nothing."""
    from geo.demo import load_demo

    settings = get_settings()
    with friendly_errors(), session_scope(settings) as session:
        say("loading the demo county 项城市 (411681) ...")
        summary = load_demo(session, settings, progress=say)
    say(
        f"demo ready in {summary.seconds:.1f} s: {summary.created} units created, "
        f"{summary.unchanged} unchanged. Next: `gridmap serve`, then open http://127.0.0.1:{DEFAULT_PORT}/docs"
    )


@app.command("import")
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
) -> None:
    """Import units; all-or-nothing: one bad feature refuses the file and nothing is stored."""
    from geo.importer import import_units

    settings = get_settings()
    when = (valid_from or datetime.now()).astimezone()
    with friendly_errors(), session_scope(settings) as session:
        t0 = time.perf_counter()
        result = import_units(session, path, crs, repair=repair, valid_from=when, settings=settings)
    for line in result.repairs:
        say(f"  repaired: {line}")
    for code, messages in result.warnings.items():
        for message in messages:
            say(f"  warning: {code} {message}")
    s = result.summary
    say(
        f"imported {result.features} units from {path.name} ({result.source_crs}) in "
        f"{time.perf_counter() - t0:.1f} s: {len(s.created)} new, {len(s.versioned)} new versions, "
        f"{len(s.unchanged)} unchanged"
    )


@app.command()
def export(
    out: Annotated[Path, typer.Argument(help="Output file")],
    level: Annotated[Level, typer.Option(help="Which level to export")] = Level.GRID,
    fmt: Annotated[str, typer.Option("--format", help="geojson or gpkg")] = "geojson",
) -> None:
    """Export the current units of one level (EPSG:4490 lon/lat)."""
    from geo.importer import export_units

    with friendly_errors(), session_scope(get_settings()) as session:
        count = export_units(session, level, fmt, out)
    if count == 0:
        fail(
            f"no current units at level {level}: nothing written "
            "(load some with `gridmap demo` or `gridmap import`)"
        )
    say(f"wrote {count} {level} units to {out}")


@app.command()
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
    from geo.batch import assign_csv
    from geo.db.locate import load_grid_index

    settings = get_settings()
    with friendly_errors():
        with session_scope(settings) as session:
            say("building the grid index ...")
            index = load_grid_index(session, tolerance_m=settings.snap_tolerance_m)
        say(f"  {len(index.codes)} grids indexed in {index.build_seconds:.1f} s")
        summary = assign_csv(points, output, crs, index, progress=sys.stderr.isatty())
    say(summary)


@app.command()
def escalate() -> None:
    """Escalate overdue cases one tier (what `serve` does every minute; for cron on other setups)."""
    from geo.db.cases import Rules, escalate_overdue

    settings = get_settings()
    with friendly_errors(), session_scope(settings) as session:
        moved = escalate_overdue(session, Rules.load(settings), batch=100_000)
    say(f"escalated {moved} overdue case(s)" if moved else "no overdue cases to escalate")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = DEFAULT_PORT,
    workers: Annotated[int, typer.Option(min=1, help="Server processes (they share the live feed)")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Serve the API (and map) on the configured or embedded database."""
    import uvicorn

    from api.app import create_app

    settings = get_settings()
    with friendly_errors():
        url = ready_url(settings)
    say(f"serving on http://{host}:{port} (API docs: http://{host}:{port}/docs)")
    if workers > 1:  # each process builds its app from the environment's settings
        uvicorn.run(
            "api.app:create_app", factory=True, host=host, port=port, workers=workers, log_level=log_level
        )
        return
    app_ = create_app(settings, engine=engine_for(url, service=True))
    uvicorn.run(app_, host=host, port=port, log_level=log_level)


if __name__ == "__main__":
    app()
