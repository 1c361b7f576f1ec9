"""The assignment rule: which grid is responsible for a point, and why.

1. The current grids whose polygon covers the point (boundary points count). A special grid wins
   over the base grid it overlays; among equals the lowest code wins. Inside the chosen grid, the
   micro-grid that covers the point (lowest code on a shared edge) is reported too.
2. Outside every grid but within the snap tolerance (metres) of one: the nearest grid, `snapped`.
3. Farther: `unassigned`, with the lowest unit that contains the point and the nearest grid.

The rule is applied in two places that must agree: in PostGIS for single points and bulk
reassignment (store.locate) and in-process for batches (geo.lookup); both take their order from
`grid_precedence` here, and the test suite checks them against each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from geo.codes import GridKind


class Status(StrEnum):
    """Outcome of an assignment."""

    ASSIGNED = "assigned"
    SNAPPED = "snapped"
    UNASSIGNED = "unassigned"


class Rule(StrEnum):
    """Which part of the rule decided."""

    COVERS = "covers"
    SPECIAL_OVERLAY = "special_overlay"
    SNAPPED = "snapped"
    UNASSIGNED = "unassigned"


# Lower wins. Special grids are responsible inside their area (domain.md §2).
KIND_PRECEDENCE = {GridKind.SPECIAL: 0, GridKind.URBAN: 1, GridKind.RURAL: 1}


def grid_precedence(kind: str | None, code: str) -> tuple[int, str]:
    """Sort key of a covering grid: the smallest key is responsible."""
    return KIND_PRECEDENCE.get(kind, 1), code


@dataclass(frozen=True)
class GridRef:
    """A grid as named in an answer."""

    code: str
    name: str
    kind: str | None
    version: int


@dataclass(frozen=True)
class UnitRef:
    """A unit in the chain of parents."""

    code: str
    name: str
    level: str


@dataclass(frozen=True)
class Nearest:
    """The nearest grid to a point no grid covers."""

    code: str
    distance_m: float


@dataclass(frozen=True)
class Assignment:
    """The responsible grid for one point and the reasons, in the shape clients rely on."""

    status: Status
    rule: Rule
    grid: GridRef | None
    distance_m: float | None
    units: list[UnitRef]
    nearest: Nearest | None
    micro_grid: GridRef | None = None
    covering: list[str] = field(default_factory=list)  # every current grid that covers the point
    explanation: str = ""
    # Units (above grids) that cover the point besides the chain's own: overlapping siblings.
    overlapping: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON answer of /locate: dataclasses.asdict's shape, built without its deep copies
        (which cost more than the rest of a case's intake in Python)."""
        return {
            "status": self.status,
            "rule": self.rule,
            "grid": _flat(self.grid),
            "distance_m": self.distance_m,
            "units": [_flat(u) for u in self.units],
            "nearest": _flat(self.nearest),
            "micro_grid": _flat(self.micro_grid),
            "covering": list(self.covering),
            "explanation": self.explanation,
            "overlapping": list(self.overlapping),
        }


def _flat(ref: GridRef | UnitRef | Nearest | None) -> dict[str, Any] | None:
    """A reference's fields (all plain values) as a dict, in field order like asdict."""
    return None if ref is None else dict(ref.__dict__)


def unit_chain(hits: Sequence[UnitRef]) -> tuple[list[UnitRef], list[str]]:
    """The chain of units above grids covering a point, top down, and the overlapping others.

    Real neighbouring units overlap a little. At each level the lowest code wins among the units
    below the one chosen above (any unit when none is), as among grids; the others are returned
    so that the answer can say the point lies in an overlap.
    """
    chain: list[UnitRef] = []
    for length in sorted({len(h.code) for h in hits}):
        level = [h for h in hits if len(h.code) == length]
        under = [h for h in level if not chain or h.code.startswith(chain[-1].code)] or level
        chain.append(min(under, key=lambda h: h.code))
    chosen = {u.code for u in chain}
    return chain, sorted(h.code for h in hits if h.code not in chosen)


def choose(covering: Sequence[GridRef]) -> tuple[GridRef, Rule]:
    """The responsible grid among those covering a point, and the rule that picked it."""
    chosen = min(covering, key=lambda g: grid_precedence(g.kind, g.code))
    overlays = chosen.kind == GridKind.SPECIAL and any(g.kind != GridKind.SPECIAL for g in covering)
    return chosen, Rule.SPECIAL_OVERLAY if overlays else Rule.COVERS


def explain(a: Assignment, tolerance_m: float) -> str:
    """One sentence a dispatcher can read."""
    if a.grid is None:
        where = f"inside {a.units[-1].name} ({a.units[-1].code})" if a.units else "outside every unit"
        if a.overlapping:
            where += f", where it overlaps {', '.join(a.overlapping)} (lowest code wins)"
        near = f"; nearest grid {a.nearest.code} is {a.nearest.distance_m:.0f} m away" if a.nearest else ""
        return f"no grid covers the point or lies within {tolerance_m:g} m; it is {where}{near}"
    grid = f"grid {a.grid.code} {a.grid.name} (version {a.grid.version})"
    if a.rule == Rule.SNAPPED:
        return f"no grid covers the point; {grid} is {a.distance_m:.1f} m away, within {tolerance_m:g} m"
    text = f"{grid} covers the point"
    if a.rule == Rule.SPECIAL_OVERLAY:
        others = ", ".join(c for c in a.covering if c != a.grid.code)
        text += f" and as a special grid takes precedence over {others}"
    elif len(a.covering) > 1:
        others = ", ".join(c for c in a.covering if c != a.grid.code)
        text += f" (on a shared edge with {others}: lowest code wins)"
    if a.micro_grid is not None:
        text += f"; micro-grid {a.micro_grid.code} {a.micro_grid.name}"
    return text
