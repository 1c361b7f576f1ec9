"""What publishing a draft plan does, computed from the draft alone (pure: no database).

services.plans loads the draft (geo.plans, geo.plan_edits), asks this module what the publication
creates, changes and retires, which units it touches (and so must still be at the version the
draft started from), who takes the people of a retired unit, and the before/after arithmetic of
its impact; the store then writes exactly that.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import shapely

from geo import crs
from geo.people import PartyCellKind
from geo.plan_impact import to_storage, usable
from geo.plan_validation import ERROR, Problem
from geo.plans import Change, PlanState, changes
from geo.validation import UnitFeature

AREA_NOTE = (
    "households and population that move with an area are estimated by area share of the unit they "
    "leave (an edit that gives the counts overrides the estimate); open cases, party cells and staff "
    "are exact"
)


@dataclass(frozen=True)
class Publication:
    """The unit versions a publish writes: new or changed units from one instant, retired codes closed."""

    changes: list[Change]
    write: list[UnitFeature]  # created and changed units, as they will be
    retire: list[str]  # existing codes that retire (never given out again)
    warnings: dict[str, list[str]]  # per code: what to note on its new version


def publication(plan_id: int, base: Mapping[str, UnitFeature], state: PlanState) -> Publication:
    """What publishing the draft writes: every changed unit's new version and the codes it retires."""
    found = changes(base, state)
    warnings = {
        code: [f"households and population estimated by area share (plan {plan_id})"]
        for code in state.estimated
    }
    retire = sorted(state.retired & base.keys())
    return Publication(found, [c.after for c in found if c.after is not None], retire, warnings)


def touched(
    edit_params: Iterable[Mapping[str, Any]], base: Mapping[str, UnitFeature], state: PlanState
) -> set[str]:
    """Existing units the draft names or changes (codes it allocated itself are not among them)."""
    named, allocated = set(), set()
    for p in edit_params:
        named.update(c for c in [p.get("code"), p.get("into"), p.get("to"), p.get("parent")] if c)
        named.update(p.get("codes") or [])
        allocated.update(p.get("allocated") or [])
    changed = {c.code for c in changes(base, state) if c.change != "created"}
    return (named | changed) - allocated - {state.root}


def conflicts(
    codes: Iterable[str], started: Mapping[str, int], current: Mapping[str, int | None]
) -> list[dict[str, Any]]:
    """Units whose current version is not the one the draft started from, with the reason."""
    out = []
    for code in sorted(codes):
        was, now = started.get(code), current.get(code)
        if was == now and was is not None:
            continue
        reason = (
            "created since the draft was opened"
            if was is None
            else "retired since the draft was opened"
            if now is None
            else f"changed since the draft was opened (version {was} → {now})"
        )
        out.append({"code": code, "base_version": was, "current_version": now, "reason": reason})
    return out


def conflict_message(plan_id: int, found: list[dict[str, Any]]) -> str:
    """One sentence naming every conflicting unit and the plan that changed it."""
    named = "; ".join(
        f"{c['code']} {c['reason']}"
        + (f" by plan {c['by_plan']} ({c['by_plan_title']})" if c.get("by_plan") else "")
        for c in found
    )
    return f"plan {plan_id} conflicts with changes published since it was opened: {named}"


def conflict_problem(c: Mapping[str, Any]) -> Problem:
    """A conflict as a validation problem (an error: it refuses a publish)."""
    by = f" by plan {c['by_plan']}" if c.get("by_plan") else ""
    return Problem("conflict", ERROR, (c["code"],), f"{c['code']} {c['reason']}{by}")


def case_search_area(
    base: Mapping[str, UnitFeature], state: PlanState, touched_codes: set[str], tolerance_m: float
) -> tuple[list[str], shapely.Geometry | None]:
    """Where open cases may change grid: the touched and changed codes, and every changed area
    grown by the snap tolerance (a case just outside may snap to another grid now)."""
    moved = [c for c in changes(base, state) if c.geometry_changed]
    affected = sorted({c.code for c in moved} | touched_codes)
    areas = [c.before.geometry for c in moved if c.before is not None]
    areas += [c.after.geometry for c in moved if c.after is not None and usable(c.after)]
    if not areas:
        return affected, None
    area = shapely.union_all(areas)
    metric = crs.metric_crs_of(area)
    return affected, to_storage(shapely.buffer(crs.to_metric(area, metric), tolerance_m + 1), metric)


def successor(state: PlanState, code: str) -> str | None:
    """Who holds a unit's people after the draft: itself, the unit that took its area, or nobody."""
    seen = set()
    while code in state.retired and code not in seen:
        seen.add(code)
        code = state.successors.get(code)
        if code is None:
            return None
    return code


def household_unit(state: PlanState, old: str, point: shapely.Geometry) -> str | None:
    """The base unit of the old unit's level covering a central household after the draft."""
    kept = state.units.get(old)
    if kept is not None and usable(kept) and shapely.covers(kept.geometry, point):
        return old
    candidates = sorted(
        c
        for c, u in state.units.items()
        if len(c) == len(old) and u.kind != "special" and usable(u) and shapely.covers(u.geometry, point)
    )
    return candidates[0] if candidates else successor(state, old)


def people_moves(
    state: PlanState, cells: Iterable[Any], staff: Iterable[Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Party cells and staff whose unit changes: central households by point, the rest with their unit.

    `cells` have id, kind, unit_code, lon, lat; `staff` id, role, unit_code (store rows).
    """
    cell_moves = []
    for cell in cells:
        if cell.kind == PartyCellKind.CENTRAL_HOUSEHOLD and cell.lon is not None:
            to = household_unit(state, cell.unit_code, shapely.Point(cell.lon, cell.lat))
        else:
            to = successor(state, cell.unit_code)
        if to != cell.unit_code:
            # No names: a central household is named after a person (personal data, like phones).
            cell_moves.append({"id": cell.id, "kind": cell.kind, "from": cell.unit_code, "to": to})
    staff_moves = [
        {"id": s.id, "role": s.role, "from": s.unit_code, "to": to}
        for s in staff
        if (to := successor(state, s.unit_code)) != s.unit_code
    ]
    return cell_moves, staff_moves


def impact_codes(
    base: Mapping[str, UnitFeature], state: PlanState, cells: list[dict], staff: list[dict]
) -> list[str]:
    """The units an impact reports: every unit the draft changes and every one people move to."""
    codes = {c.code for c in changes(base, state)} | {m["to"] for m in cells + staff if m["to"]}
    return sorted(c for c in codes if c in base or c in state.units)


def unit_impact(
    base: Mapping[str, UnitFeature],
    state: PlanState,
    moves: Mapping[str, list[dict[str, Any]]],
    open_before: Mapping[str, int],
    counts_before: Mapping[tuple[str, str], int],
) -> list[dict[str, Any]]:
    """Per unit, before and after: households, population, open cases, party cells and staff.

    `moves` holds the "cases", "party_cells" and "staff" that change unit; the counts before come
    from the store (open cases per grid, people per (what, unit)).
    """
    cells, staff, cases = moves["party_cells"], moves["staff"], moves["cases"]
    by_code = {c.code: c for c in changes(base, state)}
    out = []
    for code in impact_codes(base, state, cells, staff):
        before, after = base.get(code), state.units.get(code)
        cases_after = (
            open_before.get(code, 0)
            - sum(1 for m in cases if m["from"]["grid"] == code)
            + sum(1 for m in cases if m["to"]["grid"] == code)
        )
        people = {}
        for what, moved in (("party_cells", cells), ("staff", staff)):
            had = counts_before.get((what, code), 0)
            gone = sum(1 for m in moved if m["from"] == code)
            came = sum(1 for m in moved if m["to"] == code)
            people[what] = {"before": had, "after": had - gone + came if after is not None else 0}
        unit = after or before
        out.append(
            {
                "code": code,
                "name": unit.name,
                "level": str(unit.level),
                "kind": unit.kind,
                "change": by_code[code].change if code in by_code else "unchanged",
                "households": {
                    "before": before.households if before else None,
                    "after": after.households if after else None,
                },
                "population": {
                    "before": before.population if before else None,
                    "after": after.population if after else None,
                },
                "estimated": code in state.estimated,
                "open_cases": {"before": open_before.get(code, 0), "after": cases_after},
                **people,
            }
        )
    return out


def change_rows(
    created: list[str], changed: list[str], retired: list[str], old: Mapping[str, int], new: Mapping[str, int]
) -> list[dict[str, Any]]:
    """The plan's record of each unit it created, changed or retired, with the versions."""
    return (
        [{"code": c, "change": "created", "old": None, "new": new[c]} for c in created]
        + [{"code": c, "change": "changed", "old": old[c], "new": new[c]} for c in changed]
        + [{"code": c, "change": "retired", "old": old[c], "new": None} for c in retired]
    )


def audit_summary(result: Mapping[str, Any]) -> dict[str, Any]:
    """What the audit log keeps of a publish: the codes, and how many cases moved."""
    return {k: result.get(k) for k in ("created", "changed", "retired")} | {
        "cases": len(result.get("cases", []))
    }
