"""Comparing coverage findings with an earlier report: new, resolved and unchanged findings.

One rule (same_finding): a finding is the same problem as an earlier one when it
has the same kind, units (and case) and a shape mostly overlapping. A finding of now with no
such earlier one is new; an earlier finding with no such finding now is resolved.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import shapely

from geo.coverage import Finding, Kind, feature_collection, summary

# Two findings are the same problem when they share at least this share of the larger one's area.
SAME_FINDING_OVERLAP = 0.5


@dataclass(frozen=True)
class Comparison:
    """Findings of now (each with `new` set) and the earlier findings that are gone (resolved)."""

    findings: list[Finding]
    resolved: list[Finding]

    @property
    def unchanged(self) -> int:
        """How many findings of now were already in the earlier report."""
        return sum(not f.new for f in self.findings)

    def summary(self) -> dict[str, dict[str, Any]]:
        """Count, new, resolved (and area in m²) per kind, every kind present."""
        return summary_with_resolved(self.findings, self.resolved)

    def as_dict(self) -> dict[str, Any]:
        """Summary, the new and the resolved findings as GeoJSON, and the unchanged count."""
        return {
            "summary": self.summary(),
            "new": feature_collection(f for f in self.findings if f.new),
            "resolved": feature_collection(self.resolved),
            "unchanged": self.unchanged,
        }


def same_finding(a: Finding, b: Finding) -> bool:
    """Same kind, same units (and case), and shapes mostly overlapping: the same problem again."""
    if a.kind != b.kind or tuple(a.units) != tuple(b.units):
        return False
    if a.detail.get("case_id") != b.detail.get("case_id"):
        return False
    if a.geometry is None or b.geometry is None:
        return a.geometry is None and b.geometry is None
    if a.kind == Kind.CASE_IN_GAP:
        return shapely.distance(a.geometry, b.geometry) < 1e-7
    # A ratio of areas: lon/lat degrees² do for it at the scale of one finding.
    larger = max(a.geometry.area, b.geometry.area)
    shared = shapely.intersection(a.geometry, b.geometry).area
    return larger > 0 and shared >= SAME_FINDING_OVERLAP * larger


def _key(finding: Finding) -> tuple[Kind, tuple[str, ...]]:
    return finding.kind, tuple(finding.units)


def compare(findings: Iterable[Finding], previous: Sequence[Finding]) -> Comparison:
    """Findings marked new against `previous`, and the findings of `previous` resolved since."""
    earlier: dict[tuple[Kind, tuple[str, ...]], list[Finding]] = defaultdict(list)
    for f in previous:
        earlier[_key(f)].append(f)
    matched: set[int] = set()  # ids of earlier findings seen again
    marked = []
    for f in findings:
        candidates = earlier.get((f.kind, tuple(f.units)))
        same = [e for e in candidates if same_finding(f, e)] if candidates else ()
        if same:
            matched.update(id(e) for e in same)
        # Made directly: dataclasses.replace costs several times more, a million times over.
        marked.append(Finding(f.kind, f.units, f.geometry, f.area_m2, f.detail, new=not same))
    # A resolved finding is reported as it was; `new` (of its own report) means nothing now.
    resolved = [replace(e, new=None) for e in previous if id(e) not in matched]
    return Comparison(marked, resolved)


def mark_new(findings: Iterable[Finding], previous: Sequence[Finding]) -> list[Finding]:
    """Findings with `new` set: True unless the same problem is among `previous`."""
    return compare(findings, previous).findings


def summary_with_resolved(
    findings: Iterable[Finding], resolved: Iterable[Finding] = ()
) -> dict[str, dict[str, Any]]:
    """geo.coverage.summary plus a `resolved` count per kind."""
    out = summary(findings)
    for entry in out.values():
        entry["resolved"] = 0
    for f in resolved:
        out[f.kind.value]["resolved"] += 1
    return out
