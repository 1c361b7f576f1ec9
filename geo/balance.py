"""Balance of a draft: households per grid against the size norm of its kind (domain.md §1)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from geo.codes import GridKind, Level
from geo.coverage import Tolerances
from geo.plans import PlanState


@dataclass(frozen=True)
class GridBalance:
    """One grid of the draft: its households and where they stand against its kind's norm."""

    code: str
    name: str
    kind: str | None
    households: int | None
    norm: tuple[int, int] | None  # (min, max) households for its kind; None: no norm (special)
    status: str  # within | below | above | unknown (no households or no norm)
    estimated: bool  # households estimated by area share


@dataclass(frozen=True)
class Spread:
    """How even the grids of one kind are."""

    kind: str
    grids: int
    min: int
    max: int
    ratio: float | None  # max / min (None when min is 0)
    mean_deviation: float  # mean |households − middle of the norm| / middle, as a fraction


def norms(tolerances: Tolerances) -> dict[str, tuple[int, int]]:
    """The size norm (households) of each base grid kind."""
    return {GridKind.URBAN: tolerances.urban_households, GridKind.RURAL: tolerances.rural_households}


def grid_balance(state: PlanState, tolerances: Tolerances) -> list[GridBalance]:
    """Every grid of the draft with its households against its kind's norm, by code."""
    kind_norms = norms(tolerances)
    out = []
    for code, unit in sorted(state.units.items()):
        if unit.level != Level.GRID:
            continue
        norm = kind_norms.get(unit.kind)
        if norm is None or unit.households is None:
            status = "unknown"
        elif unit.households < norm[0]:
            status = "below"
        elif unit.households > norm[1]:
            status = "above"
        else:
            status = "within"
        out.append(
            GridBalance(code, unit.name, unit.kind, unit.households, norm, status, code in state.estimated)
        )
    return out


def spreads(grids: list[GridBalance]) -> list[Spread]:
    """Per kind with a norm: the smallest and largest grid and the mean deviation from the norm's middle."""
    out = []
    for kind in sorted({g.kind for g in grids if g.norm is not None and g.households is not None}):
        counted = [g for g in grids if g.kind == kind and g.norm is not None and g.households is not None]
        low, high = min(g.households for g in counted), max(g.households for g in counted)
        middle = sum(counted[0].norm) / 2
        deviation = statistics.fmean(abs(g.households - middle) / middle for g in counted) if middle else 0.0
        out.append(
            Spread(kind, len(counted), low, high, round(high / low, 2) if low else None, round(deviation, 3))
        )
    return out
