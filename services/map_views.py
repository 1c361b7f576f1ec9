"""What the map shows for a request: its view, extents, tile filters, popups, search and labels.

The map page, its TileJSON and its data routes ask here; the store answers the queries.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import quote

from sqlalchemy.orm import Session

from access.roles import Permission, User
from errors import Invalid, NotFound
from geo.codes import LEVELS, CodeError, Level, level_of
from maps.views import MapView, ViewKind
from store import boundary_generation, map_labels, mapdata
from store.tiles import TileFilter

Bounds = tuple[float, float, float, float]
LABEL_LEVELS = map_labels.LABEL_LEVELS


def generation(session: Session) -> int:
    """The boundary generation: it changes whenever a unit's outline does (open maps poll it)."""
    return boundary_generation.generation(session)


def check_code(code: str) -> None:
    """NotFound for a string that cannot be a unit code."""
    try:
        level_of(code)
    except CodeError as exc:
        raise NotFound(f"no unit with code {code!r}: {exc}") from None


def unit_bounds(session: Session, code: str) -> Bounds:
    """The extent of a current unit; NotFound if there is none with that code."""
    check_code(code)
    bounds = mapdata.unit_bounds(session, code)
    if bounds is None:
        raise NotFound(f"no current unit with code {code}")
    return bounds


def view_bounds(session: Session, unit: str | None, near: str | None) -> Bounds:
    """The extent of a view: a grid and its neighbours, a unit, or everything stored."""
    if near is not None:
        found = mapdata.codes_bounds(session, mapdata.grid_neighbourhood(session, near))
        if found is None:
            raise NotFound(f"no current grid with code {near}")
        return found
    found = unit_bounds(session, unit) if unit else mapdata.all_bounds(session)
    if found is None:
        raise NotFound("no units are loaded yet: import a county first")
    return found


def neighbourhood(session: Session, grid: str) -> list[str]:
    """A current grid and its neighbours; NotFound if there is no such grid."""
    grids = mapdata.grid_neighbourhood(session, grid)
    if not grids:
        raise NotFound(f"no current grid with code {grid}")
    return grids


def map_view(
    session: Session, user: User | None, *, view: str, unit: str | None, grid: str | None, plan: str | None
) -> MapView:
    """What the map page for these parameters shows, with the extent of everything, its generation
    and the levels stored (the layer control lists no level the tiles can never hold)."""
    spec = _view(session, user, view=view, unit=unit, grid=grid, plan=plan)
    now = generation(session)
    stored = stored_levels(session, now)
    levels = tuple(level for level in LEVELS if level in stored)
    return replace(spec, extent=mapdata.all_bounds(session), generation=now, levels=levels)


_levels: dict[tuple[str, int], set[str]] = {}  # (database, boundary generation) -> levels stored


def stored_levels(session: Session, generation: int) -> set[str]:
    """The levels stored, read once per boundary generation (every write of units moves it on): a
    level missing from a province's 400,000 units is a scan of them all."""
    key = (str(session.get_bind().engine.url), generation)
    if key not in _levels:
        if len(_levels) > 64:  # many test databases in one process; a server has one
            _levels.clear()
        _levels[key] = mapdata.stored_levels(session, [str(level) for level in LEVELS])
    return _levels[key]


def _view(
    session: Session, user: User | None, *, view: str, unit: str | None, grid: str | None, plan: str | None
) -> MapView:
    if grid is not None:
        if mapdata.unit_bounds(session, grid) is None or level_of(grid) != Level.GRID:
            raise NotFound(f"no current grid with code {grid}")
        return MapView(
            kind=ViewKind.FIELD,
            title=f"网格 {grid} 及相邻网格 · grid and neighbours",
            bounds=mapdata.codes_bounds(session, mapdata.grid_neighbourhood(session, grid)),
            tile_query=f"?near={grid}",
            cases_url=f"/map/cases?near={grid}",
            grid=grid,
            report_url="/report",
        )
    tops = mapdata.top_units(session)
    if unit is None:
        if not tops:
            raise NotFound("no units are loaded yet: import a county first")
        unit = tops[0] if len(tops) == 1 else None
    bounds = unit_bounds(session, unit) if unit else mapdata.all_bounds(session)
    # The only top unit (a county deployment's county, a province's province) is everything:
    # its tiles need no filter. Any other unit, a city or a county of a province, filters.
    query = f"?unit={unit}" if unit and tops != [unit] else ""
    if view == ViewKind.PLANNER:
        return MapView(
            kind=ViewKind.PLANNER,
            title=f"规划 Planner · {unit or 'all'}" + (f" · plan {plan}" if plan else ""),
            bounds=bounds,
            tile_query=query,
            cases_url=f"/map/cases{query}",
            unit=unit,
            plan=plan,
            overlays=_planner_overlays(user, unit or "", plan),
        )
    return MapView(
        kind=ViewKind.DISPATCHER,
        title=f"调度 Dispatcher · {unit or 'all'}",
        bounds=bounds,
        tile_query=query,
        cases_url=f"/map/cases{query}",
        unit=unit,
    )


def _planner_overlays(user: User | None, unit: str, plan: str | None) -> dict[str, str]:
    overlays = {"coverage": f"/coverage?unit={quote(unit)}"}
    if user is None or user.can(Permission.PLAN):
        if plan is not None:
            overlays["plan"] = f"/plans/{quote(plan, safe='')}"
        else:
            overlays["plans"] = "/plans?status=draft" + (f"&unit={quote(unit)}" if unit else "")
    return overlays


def tile_filters(session: Session, unit: str | None, near: str | None) -> dict[Level, TileFilter]:
    """Per level, which units the view's tiles hold: regions, the county, streets and communities for
    context, grids (and micro-grids) of the view."""
    everything = TileFilter()
    if near is not None:
        mine = TileFilter(grids=tuple(neighbourhood(session, near)))
        return {Level.PROVINCE: everything, Level.CITY: everything, Level.COUNTY: everything,
                Level.STREET: everything, Level.COMMUNITY: everything,
                Level.GRID: mine, Level.MICRO_GRID: mine}  # fmt: skip
    if unit is not None:
        unit_bounds(session, unit)  # an unknown unit is a mistake to report, not an empty tile
    below = TileFilter(unit=unit) if unit is not None else everything
    # Regions and counties draw in full for context (a city's neighbours); what lies below the
    # view's unit is its own.
    return {Level.PROVINCE: everything, Level.CITY: everything, Level.COUNTY: everything,
            Level.STREET: below, Level.COMMUNITY: below,
            Level.GRID: below, Level.MICRO_GRID: below}  # fmt: skip


def unit_popup(session: Session, code: str) -> dict[str, Any]:
    """A unit's popup: names, parent chain, staff and party-cell counts, open and overdue cases."""
    check_code(code)
    summary = mapdata.unit_summary(session, code)
    if summary is None:
        raise NotFound(f"no current unit with code {code}")
    return summary


def search_units(session: Session, q: str) -> list[dict[str, Any]]:
    """Current units by code prefix or part of the name, with their extents."""
    return mapdata.search_units(session, q)


def labels(session: Session, bbox: Bounds, levels: list[str]) -> list[dict[str, Any]]:
    """Label points of the current units of `levels` in `bbox`; Invalid for an unknown level."""
    unknown = sorted(set(levels) - set(LABEL_LEVELS))
    if unknown:
        raise Invalid(f"unknown level {', '.join(unknown)}; one of {', '.join(LABEL_LEVELS)}")
    return map_labels.unit_labels(session, bbox, levels)
