"""The impact arithmetic of a draft: areas in metres, households and population moved by area share.

Areas and widths are measured in the Gauss-Krüger zone of the place (geo.crs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np
import shapely

from geo import crs
from geo.codes import GridKind
from geo.plan_edits import has_counts
from geo.plans import COUNTS, PlanState, _clean, changes
from geo.validation import UnitFeature


def metric_crs_of(units: Iterable[UnitFeature]) -> str:
    """The Gauss-Krüger zone for a set of units."""
    return crs.metric_crs_of(u.geometry for u in units)


def to_storage(geometry: shapely.Geometry, metric_crs: str) -> shapely.Geometry:
    """A metric geometry back in storage lon/lat."""
    t = crs.transformer(metric_crs, crs.STORAGE_CRS)
    return shapely.transform(geometry, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def usable(unit: UnitFeature) -> bool:
    """True when a unit's geometry is a valid, non-empty area (overlay operations need one)."""
    g = unit.geometry
    return g is not None and g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty and g.is_valid


def _layer(unit: UnitFeature) -> tuple[int, bool]:
    """Units share households only with units of the same level and layer (base or special)."""
    return len(unit.code), unit.kind == GridKind.SPECIAL


def area_m2(geometry: shapely.Geometry, metric_crs: str) -> float:
    """Area in m² of a storage geometry.

    Overlays run in storage lon/lat, where units share their edges exactly; projecting first
    bends each edge between its own vertices and leaves slivers of a square metre along them.
    """
    return 0.0 if geometry.is_empty else float(crs.to_metric(geometry, metric_crs).area)


def estimate_counts(base: Mapping[str, UnitFeature], state: PlanState) -> PlanState:
    """Households and population of units whose area changed, by area share (unless an edit gave them)."""
    state = state.copy()
    metric = metric_crs_of(base.values())
    moved = [c for c in changes(base, state) if c.after is not None and c.geometry_changed]
    for change in (c for c in moved if usable(c.after)):
        unit = change.after
        if unit.code in state.explicit:
            continue
        sources = [b for b in base.values() if _layer(b) == _layer(unit)]
        sources = [b for b in sources if shapely.intersects(b.geometry, unit.geometry)]
        if not sources or any(not has_counts(b) for b in sources):
            continue  # nothing to estimate from: keep what the unit said
        totals = dict.fromkeys(COUNTS, 0.0)
        for source in sources:
            whole = area_m2(source.geometry, metric)
            share = (
                area_m2(shapely.intersection(source.geometry, unit.geometry), metric) / whole if whole else 0
            )
            for k in COUNTS:
                totals[k] += getattr(source, k) * share
        estimated = {k: round(v) for k, v in totals.items()}
        if any(getattr(unit, k) != estimated[k] for k in COUNTS):
            state.units[unit.code] = replace(unit, **estimated)
            state.estimated.add(unit.code)
    return state


@dataclass(frozen=True)
class Transfer:
    """Area that changes hands between two units (None: to or from nobody, a gap)."""

    from_code: str | None
    to_code: str | None
    geometry: shapely.Geometry  # storage lon/lat
    area_m2: float
    households: float  # area-weighted share of the giver's households
    population: float


def transfers(
    base: Mapping[str, UnitFeature], state: PlanState, *, min_area_m2: float = 1.0
) -> list[Transfer]:
    """Every area that leaves one unit for another (same level and layer), with its people by area."""
    metric = metric_crs_of(base.values())
    changed = changes(base, state)
    givers = [c.before for c in changed if c.before is not None and c.geometry_changed]
    takers = [c.after for c in changed if c.after is not None and c.geometry_changed and usable(c.after)]
    out = []
    for giver in givers:
        after = state.units.get(giver.code)
        keeps = after is not None and usable(after)
        lost = _clean(shapely.difference(giver.geometry, after.geometry)) if keeps else giver.geometry
        if area_m2(lost, metric) < min_area_m2:
            continue
        whole = area_m2(giver.geometry, metric)
        claimed = []
        for taker in (t for t in takers if t.code != giver.code and _layer(t) == _layer(giver)):
            piece = _clean(shapely.intersection(lost, taker.geometry))
            if area_m2(piece, metric) >= min_area_m2:
                out.append(_transfer(giver, taker.code, piece, whole, metric))
                claimed.append(piece)
        rest = _clean(shapely.difference(lost, shapely.union_all(claimed))) if claimed else lost
        if area_m2(rest, metric) >= min_area_m2:
            out.append(_transfer(giver, None, rest, whole, metric))
    for taker in takers:
        held = [b.geometry for b in base.values() if _layer(b) == _layer(taker)]
        fresh = (
            _clean(shapely.difference(taker.geometry, shapely.union_all(held))) if held else taker.geometry
        )
        if area_m2(fresh, metric) >= min_area_m2:
            out.append(Transfer(None, taker.code, fresh, area_m2(fresh, metric), 0.0, 0.0))
    return out


def _transfer(
    giver: UnitFeature, to: str | None, piece: shapely.Geometry, whole: float, metric: str
) -> Transfer:
    area = area_m2(piece, metric)
    share = area / whole if whole else 0.0
    return Transfer(
        giver.code, to, piece, area, (giver.households or 0) * share, (giver.population or 0) * share
    )
