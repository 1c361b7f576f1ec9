"""`gridmap plan ...`: draft plans (redrawing) through the same use cases as the API (services.plans)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated

import typer

from cli.common import fail, say, session_scope
from cli.errors import refusals
from geo.plan_fields import EditFields, help_of
from geo.settings import get_settings

plan_app = typer.Typer(help="Draft plans: redraw grids inside a unit, check them, see the impact, publish.")


def _plan_json(data: object) -> None:
    """Data for scripts on stdout, as the API answers it."""
    import json

    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def plan_errors() -> AbstractContextManager[None]:
    """Plan errors as messages: conflicts name the units, invalid drafts list their problems (cli.errors)."""
    return refusals()


@plan_app.command("new")
def plan_new(
    unit: Annotated[str, typer.Argument(help="The unit to redraw inside (a community for its grids)")],
    title: Annotated[str, typer.Option(help="What the plan is for")],
    author: Annotated[str, typer.Option(help="Who plans")] = "cli",
) -> None:
    """Open a draft plan on a unit; prints its id."""
    from services import plans

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
    from services import plans

    with plan_errors(), session_scope(get_settings()) as session:
        rows = plans.list_plans(session, unit=unit, status=status)
    for p in rows:
        typer.echo(f"{p['id']}\t{p['status']}\t{p['unit']}\t{p['edits']}\t{p['title']}")


@plan_app.command("show")
def plan_show(plan_id: Annotated[int, typer.Argument(help="Plan id")]) -> None:
    """A plan as JSON: its edits, the units it changes (GeoJSON) and any conflicts."""
    from services import plans

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


def _edit_fields(given: dict[str, object]) -> EditFields:
    """The options checked as the API checks an edit's fields; a message naming each bad option."""
    from pydantic import ValidationError

    try:
        return EditFields.model_validate(given)
    except ValidationError as exc:
        for error in exc.errors():
            option = "--" + str(error["loc"][0]).replace("_", "-") if error["loc"] else "an option"
            say(f"  ✗ {option}: {error['msg']}")
        fail(f"{exc.error_count()} option(s) refused, nothing stored")
        raise  # fail() exits; this keeps type checkers content


@plan_app.command("edit")
def plan_edit(
    plan_id: Annotated[int, typer.Argument(help="Plan id")],
    operation: Annotated[str, typer.Argument(help="replace, split, merge, move, create or retire")],
    code: Annotated[str | None, typer.Option(help=help_of("code"))] = None,
    codes: Annotated[str | None, typer.Option(help=help_of("codes") + "; comma-separated")] = None,
    into: Annotated[str | None, typer.Option(help=help_of("into"))] = None,
    to: Annotated[str | None, typer.Option(help=help_of("to"))] = None,
    parent: Annotated[str | None, typer.Option(help=help_of("parent"))] = None,
    name: Annotated[str | None, typer.Option(help=help_of("name"))] = None,
    kind: Annotated[str | None, typer.Option(help=help_of("kind"))] = None,
    special_type: Annotated[str | None, typer.Option(help=help_of("special_type"))] = None,
    households: Annotated[int | None, typer.Option(min=0, help=help_of("households"))] = None,
    population: Annotated[int | None, typer.Option(min=0, help=help_of("population"))] = None,
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
    from services import plan_answers

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
    fields = _edit_fields({k: v for k, v in given.items() if v is not None})
    with plan_errors(), session_scope(get_settings()) as session:
        edit = Edit(Operation(operation), fields.params(), _edit_geometry(geometry, crs))
        added = plan_answers.add_edit(session, plan_id, edit, author=author)
    notes = added.get("notes") or []
    say(f"edit {added['edit_id']} added: {notes[-1] if notes else operation}")


@plan_app.command("validate")
def plan_validate(
    plan_id: Annotated[int, typer.Argument(help="Plan id")],
    fmt: Annotated[str, typer.Option("--format", help="table or geojson")] = "table",
) -> None:
    """Check a draft; exit 1 when it has errors (which refuse a publish)."""
    from geo.plan_validation import problems_geojson
    from services import plan_answers, plans

    settings = get_settings()

    with plan_errors(), session_scope(settings) as session:
        problems = plans.validate_plan(session, plan_id, settings)
    if fmt == "geojson":
        _plan_json(problems_geojson(problems))
    else:
        for p in problems:
            area = f"\t{p.area_m2:.1f} m²" if p.area_m2 is not None else ""
            typer.echo(f"{p.severity}\t{p.kind}\t{','.join(p.units)}\t{p.message}{area}")
    errors, warnings = plan_answers.severity_counts(problems)
    say(f"plan {plan_id}: {errors} error(s), {warnings} warning(s)")
    if errors:
        raise typer.Exit(1)


@plan_app.command("impact")
def plan_impact(plan_id: Annotated[int, typer.Argument(help="Plan id")]) -> None:
    """What changes hands (per unit before/after, areas, cases, party cells, staff), as JSON."""
    from services import plan_publish

    settings = get_settings()
    with plan_errors(), session_scope(settings) as session:
        result = plan_publish.impact(session, plan_id, settings)
    _plan_json(result)
    say(f"{len(result['units'])} unit(s) change; {len(result['cases'])} open case(s) move. {result['note']}")


@plan_app.command("publish")
def plan_publish(
    plan_id: Annotated[int, typer.Argument(help="Plan id")],
    actor: Annotated[str, typer.Option(help="Who publishes (recorded in each moved case's history)")] = "cli",
) -> None:
    """Publish a draft in one transaction; refused when a unit it touches changed meanwhile."""
    from services import plan_publish

    settings = get_settings()
    with plan_errors(), session_scope(settings) as session:
        result = plan_publish.publish(session, plan_id, settings, actor=actor)
    _plan_json(result)
    say(
        f"plan {plan_id} published: {len(result['created'])} created, {len(result['changed'])} changed, "
        f"{len(result['retired'])} retired, {len(result['cases'])} open case(s) reassigned"
    )


@plan_app.command("abandon")
def plan_abandon(plan_id: Annotated[int, typer.Argument(help="Plan id")]) -> None:
    """Give up a draft (kept for the record)."""
    from services import plans

    with plan_errors(), session_scope(get_settings()) as session:
        plans.abandon(session, plan_id, actor="cli")
    say(f"plan {plan_id} abandoned")
