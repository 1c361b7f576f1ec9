"""Coverage over many units at once: overlaps between top-level units, and totals per kind and level.

A province (or a county imported beside another) has units with no stored parent. The analysis of
`geo.coverage` compares siblings under their parent, so nothing compares these; `analyse_roots`
does, for overlaps (there is no parent whose gaps they could leave).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import shapely

from geo.codes import LEVEL_BY_LENGTH
from geo.coverage import Finding, Kind, Tolerances, Unit, analyse_groups

# The placeholder parent of the top-level units: its own findings (gaps) are not findings.
_NO_PARENT = ""


def analyse_roots(roots: Sequence[Unit], tolerances: Tolerances) -> list[Finding]:
    """Overlaps (and overlap slivers) between units that have no parent to be compared under."""
    if len(roots) < 2:
        return []
    # Their union as the parent: no gap and no overhang can arise, so what is found is overlap.
    whole = Unit(code=_NO_PARENT, geometry=shapely.union_all([r.geometry for r in roots]))
    found = analyse_groups([(whole, sorted(roots, key=lambda r: r.code))], tolerances)
    return [f for f in found if _NO_PARENT not in f.units and _is_overlap(f)]


def _is_overlap(finding: Finding) -> bool:
    return finding.kind == Kind.OVERLAP or (
        finding.kind == Kind.SLIVER and finding.detail.get("of") == Kind.OVERLAP.value
    )


def totals(findings: Iterable[Finding]) -> dict[str, dict[str, dict[str, Any]]]:
    """kind -> level of the first unit named -> {"count", "area_m2"}: where the problems are."""
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for finding in findings:
        level = LEVEL_BY_LENGTH.get(len(finding.units[0]), "?") if finding.units else "?"
        entry = out[finding.kind.value].setdefault(str(level), {"count": 0, "area_m2": 0.0})
        entry["count"] += 1
        entry["area_m2"] += finding.area_m2 or 0.0
    return {kind: dict(levels) for kind, levels in sorted(out.items())}
