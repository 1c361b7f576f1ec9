"""`gridmap`: the command line of the service (database, demo, import/export, batch assignment, serve)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy.orm import Session

from cli.ha import ha_app
from geo.codes import Level
from geo.crs import CoordinateError
from geo.settings import Settings, get_settings
from store.cluster import ClusterError, EmbeddedCluster
from store.engine import DatabaseError, engine_for, resolve_database_url, session_factory

if TYPE_CHECKING:  # imported by the commands that use them, to keep every command's start quick
    from geo.coverage import Finding, Tolerances
    from store.coverage import CoverageRun

app = typer.Typer(
    help="Grid-mapping service for grid-based community governance (网格化治理).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(
    help="The database: the embedded PostGIS cluster, or the one GRIDMAP_DATABASE_URL names."
)
app.add_typer(db_app, name="db")
app.add_typer(ha_app, name="ha")

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
    from store.migrate import upgrade  # here, not at the top: Alembic takes ~0.3 s to import

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
    from geo.importer import ImportRejected
    from store.people import PeopleError

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
    if summary.users:
        from geo.demo import DEMO_PASSWORD, DEMO_USERS

        names = ", ".join(u[0] for u in DEMO_USERS)
        say(f"demo users ({names}) have the password {DEMO_PASSWORD!r}: demo only (GRIDMAP_DEMO=1)")


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
    override_crs: Annotated[
        bool, typer.Option(help="Read the file in --crs although it declares another (or an unknown) CRS")
    ] = False,
) -> None:
    """Import units; all-or-nothing: one bad feature refuses the file and nothing is stored."""
    from geo.importer import import_units

    settings = get_settings()
    when = (valid_from or datetime.now()).astimezone()
    with friendly_errors(), session_scope(settings) as session:
        t0 = time.perf_counter()
        result = import_units(
            session, path, crs, repair=repair, valid_from=when, settings=settings, override_crs=override_crs
        )
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
    from geo.batch import assign_csv, check_points_csv
    from store.locate import load_grid_index

    settings = get_settings()
    with friendly_errors():
        check_points_csv(points, crs)  # a wrong file or CRS is said before the index is built
        with session_scope(settings) as session:
            say("building the grid index ...")
            index = load_grid_index(session, tolerance_m=settings.snap_tolerance_m)
        say(f"  {len(index.codes)} grids indexed in {index.build_seconds:.1f} s")
        summary = assign_csv(points, output, crs, index, progress=sys.stderr.isatty(), say=say)
    say(summary)


@app.command()
def escalate() -> None:
    """Escalate overdue cases one tier (what `serve` does every minute; for cron on other setups)."""
    from store.cases import Rules, escalate_overdue

    settings = get_settings()
    with friendly_errors(), session_scope(settings) as session:
        moved = escalate_overdue(session, Rules.load(settings), batch=100_000)
    say(f"escalated {moved} overdue case(s)" if moved else "no overdue cases to escalate")


@app.command("expire-patrols")
def expire_patrols() -> None:
    """Delete patrol tracks older than GRIDMAP_PATROL_RETENTION_DAYS (serve does it every hour)."""
    from store.patrols import delete_expired

    settings = get_settings()
    with friendly_errors(), session_scope(settings) as session:
        deleted = delete_expired(session, settings.patrol_retention_days)
    say(f"deleted {deleted} patrol track(s) older than {settings.patrol_retention_days} days")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = DEFAULT_PORT,
    workers: Annotated[int, typer.Option(min=1, help="Server processes (they share the live feed)")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Serve the API (and map) on the configured or embedded database."""
    import uvicorn

    from api.app import TOKEN_CACHE_S, create_app

    settings = get_settings()
    with friendly_errors():
        url = ready_url(settings)
    say(f"serving on http://{host}:{port} (API docs: http://{host}:{port}/docs)")
    # Forwarded headers are believed only from GRIDMAP_TRUSTED_PROXIES, which the app applies
    # itself (api.app); uvicorn's own handling would believe any caller on 127.0.0.1 (its default
    # forwarded_allow_ips), so it stays off.
    proxies = {"proxy_headers": False, "forwarded_allow_ips": settings.trusted_proxies or ""}
    if workers > 1:  # each process builds its app from the environment's settings
        uvicorn.run(
            "api.app:create_app", factory=True, host=host, port=port, workers=workers, log_level=log_level,
            **proxies,
        )  # fmt: skip
        return
    app_ = create_app(
        settings, engine=engine_for(url, service=True), locate_from_memory=True, token_cache_s=TOKEN_CACHE_S
    )
    uvicorn.run(app_, host=host, port=port, log_level=log_level, **proxies)


# ---------------------------------------------------------------- plan: draft plans (redrawing)

plan_app = typer.Typer(help="Draft plans: redraw grids inside a unit, check them, see the impact, publish.")
app.add_typer(plan_app, name="plan")


def _plan_json(data: object) -> None:
    """Data for scripts on stdout, as the API answers it."""
    import json

    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


@contextmanager
def plan_errors() -> Iterator[None]:
    """Plan errors as messages: conflicts name the units, invalid drafts list their problems."""
    from store.plans import PlanClosed, PlanConflict, PlanInvalid, PlanNotFound

    with friendly_errors():
        try:
            yield
        except PlanInvalid as exc:
            for problem in exc.problems:
                say(f"  ✗ {problem.kind}: {problem.message}")
            fail(str(exc))
        except (PlanConflict, PlanClosed, PlanNotFound) as exc:
            fail(str(exc))


@plan_app.command("new")
def plan_new(
    unit: Annotated[str, typer.Argument(help="The unit to redraw inside (a community for its grids)")],
    title: Annotated[str, typer.Option(help="What the plan is for")],
    author: Annotated[str, typer.Option(help="Who plans")] = "cli",
) -> None:
    """Open a draft plan on a unit; prints its id."""
    from store import plans

    with plan_errors(), session_scope(get_settings()) as session:
        plan_id = plans.open_plan(session, unit, title, author=author)
    say(f"opened draft plan {plan_id} on {unit}")
    typer.echo(plan_id)


@plan_app.command("list")
def plan_list(
    unit: Annotated[str | None, typer.Option(help="Only plans on this unit or below it")] = None,
    status: Annotated[str | None, typer.Option(help="draft, published or abandoned")] = None,
) -> None:
    """List plans, newest first (id, status, unit, edits, title)."""
    from store import plans

    with plan_errors(), session_scope(get_settings()) as session:
        rows = plans.list_plans(session, unit=unit, status=status)
    for p in rows:
        typer.echo(f"{p['id']}\t{p['status']}\t{p['unit']}\t{p['edits']}\t{p['title']}")


@plan_app.command("show")
def plan_show(plan_id: Annotated[int, typer.Argument(help="Plan id")]) -> None:
    """A plan as JSON: its edits, the units it changes (GeoJSON) and any conflicts."""
    from store import plans

    with plan_errors(), session_scope(get_settings()) as session:
        _plan_json(plans.plan_detail(session, plan_id))


def _edit_geometry(path: Path | None, crs_name: str | None) -> object:
    """The first geometry of a GeoJSON (or any vector) file, in storage lon/lat."""
    if path is None:
        return None
    import shapely

    from geo import crs
    from geo.importer import read_frame, source_crs

    frame = read_frame(path)
    if len(frame) == 0:
        raise ValueError(f"{path.name} has no geometry")
    geometry = crs.geometry_to_storage(frame.geometry.iloc[0], source_crs(path, frame, crs_name))
    xy = shapely.get_coordinates(geometry)
    crs.check_plausible(xy[:, 0], xy[:, 1])
    return geometry


@plan_app.command("edit")
def plan_edit(
    plan_id: Annotated[int, typer.Argument(help="Plan id")],
    operation: Annotated[str, typer.Argument(help="replace, split, merge, move, create or retire")],
    code: Annotated[str | None, typer.Option(help="The unit changed (replace, split, move, retire)")] = None,
    codes: Annotated[str | None, typer.Option(help="Merge: comma-separated codes")] = None,
    into: Annotated[str | None, typer.Option(help="Merge/retire: the unit that takes the area")] = None,
    to: Annotated[str | None, typer.Option(help="Move: the grid that takes the micro-grid")] = None,
    parent: Annotated[str | None, typer.Option(help="Create: the parent (default: the plan's unit)")] = None,
    name: Annotated[str | None, typer.Option(help="New name (create, replace)")] = None,
    kind: Annotated[str | None, typer.Option(help="urban, rural or special")] = None,
    special_type: Annotated[str | None, typer.Option(help="For special grids")] = None,
    households: Annotated[int | None, typer.Option(min=0, help="Households (else estimated by area)")] = None,
    population: Annotated[int | None, typer.Option(min=0, help="Residents (else estimated by area)")] = None,
    geometry: Annotated[
        Path | None, typer.Option(help="GeoJSON file: the polygon (replace, create) or the line (split)")
    ] = None,
    crs: Annotated[
        str | None, typer.Option(help="CRS of the geometry file when it declares none (wgs84, gcj02, ...)")
    ] = None,
    author: Annotated[str, typer.Option(help="Who edits")] = "cli",
) -> None:
    """Add an edit to a draft; refused with the reason when it cannot apply."""
    from geo.plans import Edit, Operation
    from store import plans

    given = {
        "code": code,
        "codes": codes.split(",") if codes else None,
        "into": into,
        "to": to,
        "parent": parent,
        "name": name,
        "kind": kind,
        "special_type": special_type,
        "households": households,
        "population": population,
    }
    params = {k: v for k, v in given.items() if v is not None}
    with plan_errors(), session_scope(get_settings()) as session:
        edit = Edit(Operation(operation), params, _edit_geometry(geometry, crs))
        edit_id = plans.add_edit(session, plan_id, edit, author=author)
        notes = plans.plan_detail(session, plan_id).get("notes") or []
    say(f"edit {edit_id} added: {notes[-1] if notes else operation}")


@plan_app.command("validate")
def plan_validate(
    plan_id: Annotated[int, typer.Argument(help="Plan id")],
    fmt: Annotated[str, typer.Option("--format", help="table or geojson")] = "table",
) -> None:
    """Check a draft; exit 1 when it has errors (which refuse a publish)."""
    from store import plans

    settings = get_settings()
    with plan_errors(), session_scope(settings) as session:
        problems = plans.validate_plan(session, plan_id, settings)
    if fmt == "geojson":
        _plan_json(plans.problems_geojson(problems))
    else:
        for p in problems:
            area = f"\t{p.area_m2:.1f} m²" if p.area_m2 is not None else ""
            typer.echo(f"{p.severity}\t{p.kind}\t{','.join(p.units)}\t{p.message}{area}")
    errors = sum(1 for p in problems if p.severity == "error")
    say(f"plan {plan_id}: {errors} error(s), {len(problems) - errors} warning(s)")
    if errors:
        raise typer.Exit(1)


@plan_app.command("impact")
def plan_impact(plan_id: Annotated[int, typer.Argument(help="Plan id")]) -> None:
    """What changes hands (per unit before/after, areas, cases, party cells, staff), as JSON."""
    from store import plans

    settings = get_settings()
    with plan_errors(), session_scope(settings) as session:
        result = plans.impact(session, plan_id, settings)
    _plan_json(result)
    say(f"{len(result['units'])} unit(s) change; {len(result['cases'])} open case(s) move. {result['note']}")


@plan_app.command("publish")
def plan_publish(
    plan_id: Annotated[int, typer.Argument(help="Plan id")],
    actor: Annotated[str, typer.Option(help="Who publishes (recorded in each moved case's history)")] = "cli",
) -> None:
    """Publish a draft in one transaction; refused when a unit it touches changed meanwhile."""
    from store import plans

    settings = get_settings()
    with plan_errors(), session_scope(settings) as session:
        result = plans.publish(session, plan_id, settings, actor=actor)
    _plan_json(result)
    say(
        f"plan {plan_id} published: {len(result['created'])} created, {len(result['changed'])} changed, "
        f"{len(result['retired'])} retired, {len(result['cases'])} open case(s) reassigned"
    )


@plan_app.command("abandon")
def plan_abandon(plan_id: Annotated[int, typer.Argument(help="Plan id")]) -> None:
    """Give up a draft (kept for the record)."""
    from store import plans

    with plan_errors(), session_scope(get_settings()) as session:
        plans.abandon(session, plan_id, actor="cli")
    say(f"plan {plan_id} abandoned")


# ---------------------------------------------------------------- user: accounts

user_app = typer.Typer(help="User accounts: each has a role and a unit it acts in (and below).")
app.add_typer(user_app, name="user")


def _new_password(given: str | None) -> str:
    """The given password, or a generated one that is printed once."""
    if given:
        return given
    import secrets

    password = secrets.token_urlsafe(12)
    say(f"generated password (shown once): {password}")
    return password


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="User name (letters, digits, _ . @ -)")],
    role: Annotated[str, typer.Option(help="admin, planner, dispatcher, field_worker, department or viewer")],
    unit: Annotated[str, typer.Option(help="Code of the unit the user acts in (and below it)")],
    password: Annotated[
        str | None, typer.Option(help="Password (8+ characters); generated if omitted")
    ] = None,
    department: Annotated[
        str | None, typer.Option(help="For role department: its code (data/departments.csv)")
    ] = None,
) -> None:
    """Create a user."""
    from access.roles import Role
    from store import users

    if role not in Role.__members__.values():
        fail(f"unknown role {role!r}; choose one of {', '.join(Role)}")
    with friendly_errors(), session_scope(get_settings()) as session:
        user = users.add_user(session, name, _new_password(password), Role(role), unit, department)
        users.audit(session, "cli", "user_add", name, {"role": role, "unit": unit, "department": department})
    say(f"user {user.username} ({user.role} in {user.unit_code}) created")


@user_app.command("list")
def user_list() -> None:
    """List users: name, role, unit, department, state."""
    from store import users

    with friendly_errors(), session_scope(get_settings()) as session:
        rows = users.list_users(session)
    for u in rows:
        state = "disabled" if u["disabled"] else "active"
        typer.echo(f"{u['username']}\t{u['role']}\t{u['unit_code']}\t{u['department'] or '-'}\t{state}")


@user_app.command("disable")
def user_disable(
    name: Annotated[str, typer.Argument(help="User name")],
    enable: Annotated[bool, typer.Option("--enable", help="Enable again instead")] = False,
) -> None:
    """Disable a user (their tokens are revoked at once), or enable them again."""
    from store import users

    with friendly_errors(), session_scope(get_settings()) as session:
        users.set_disabled(session, name, not enable)
        users.audit(session, "cli", "user_enable" if enable else "user_disable", name)
    say(f"user {name} {'enabled' if enable else 'disabled'}")


@user_app.command("reset-password")
def user_reset_password(
    name: Annotated[str, typer.Argument(help="User name")],
    password: Annotated[str | None, typer.Option(help="New password; generated if omitted")] = None,
) -> None:
    """Set a new password (forgets its failed logins, revokes its tokens)."""
    from store import users

    with friendly_errors(), session_scope(get_settings()) as session:
        users.reset_password(session, name, _new_password(password))
        users.audit(session, "cli", "user_reset_password", name)
    say(f"password of {name} reset; their old tokens are revoked")


# ---------------------------------------------------------------- coverage and crosswalk (issue 4)


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


@app.command()
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
) -> None:
    """Coverage analysis: gaps, overlaps, slivers, overhangs, staff, party cells, size norm, cases.

    Over several units (every county by default) it prints a line per unit and the totals per kind
    and level, checks the top-level units against each other for overlaps, and writes findings
    that would not fit a screen to a file.
    """
    from geo.coverage import Tolerances, analyse_groups, feature_collection
    from geo.coverage_totals import analyse_roots
    from store import coverage as store
    from store.units import units_at

    if fmt not in ("table", "geojson"):
        fail(f"unknown format {fmt!r}: use table or geojson")
    settings = get_settings()
    tolerances = Tolerances.from_settings(settings)
    when = at.astimezone() if at else None
    with friendly_errors(), session_scope(settings) as session:
        codes = [unit] if unit else store.county_codes(session)
        if unit and unit not in units_at(session, [unit], when):
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
            regions = analyse_groups(store.region_groups(session, when), tolerances)
            if regions:
                say(f"  {len(regions)} finding(s) between the counties of a city or the cities of a province")
            findings += regions
            between = analyse_roots(store.root_units(session, when), tolerances)
            if between:
                say(f"  {len(between)} overlap(s) between top-level units (no parent compares them)")
            findings += between
    if fmt == "table" and len(codes) > 1:
        _coverage_totals(findings)
    _write_findings(feature_collection(findings), output, to_stdout=fmt == "geojson")


def _coverage_of(
    session: Session, code: str, tolerances: Tolerances, when: datetime | None, *, save: bool
) -> CoverageRun:
    """One unit's coverage run, with progress for large units, saved as a report if asked."""
    from store import coverage as store

    def progress(done: int, total: int) -> None:
        if total >= 1000:  # say nothing for the blink of a small unit
            say(f"  {code}: {done:,}/{total:,} parent units analysed")

    run = store.run_coverage(session, code, tolerances, at=when, progress=progress)
    if save:
        store.save_report(session, run)
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
    import json

    count = len(collection["features"])
    if output is None and to_stdout and count <= LONG_FINDINGS:
        typer.echo(json.dumps(collection, ensure_ascii=False))
        return
    if output is None and not (to_stdout and count):
        return
    target = output or Path(f"coverage-{datetime.now():%Y%m%d-%H%M%S}.geojson")
    target.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
    say(f"{count:,} findings written to {target}" + ("" if output else f" (more than {LONG_FINDINGS:,})"))


@app.command()
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
    from store.coverage import grids_near

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
        grids = grids_near(session, [p.geometry for p in legacy])
    entries = cw.crosswalk(legacy, grids, min_share=settings.crosswalk_min_share)
    base.parent.mkdir(parents=True, exist_ok=True)
    csv_path, geojson_path = base.with_suffix(".csv"), base.with_suffix(".geojson")
    rows = cw.write_csv(entries, csv_path)
    cw.write_geojson(entries, geojson_path)
    crossing = sum(e.crosses_community for e in entries)
    unmatched = sum(not e.overlaps for e in entries)
    say(
        f"{len(entries)} legacy polygons against {len(grids)} unified grids: {rows} rows in {csv_path}, "
        f"features in {geojson_path}; {crossing} cross a community line, {unmatched} overlap no grid"
    )


if __name__ == "__main__":
    app()
