"""Which group of a coverage run a finding comes from, and which groups a publish can change: what an
incremental run after a publish re-analyses, and how it merges with the stored report (issue 19 §2).

A group is a parent and its direct children (geo.coverage.analyse_tree); every geometric and people
finding comes from exactly one group, named by its parent's code. A publish that creates, changes
or retires units can change the findings of two groups per unit only: its parent's (it is one of
the children compared there) and its own (it is the parent its children are compared with). A
community whose grids were redrawn but whose outline was kept is not itself changed, so the street
above it is not looked at again: the chain is climbed only where an outline changed.
"""

from __future__ import annotations

from collections.abc import Iterable

from geo.codes import PARENT_LENGTH
from geo.coverage import Finding, Kind

# Kinds found per child and named by the child first: their group is the child's parent.
_CHILD_FIRST = (Kind.OVERLAP, Kind.NO_STAFF, Kind.NO_PARTY_CELL, Kind.SIZE_NORM)
# Kinds named (child, parent): their group is the parent, named second.
_PARENT_SECOND = (Kind.OUTSIDE_PARENT, Kind.SPECIAL_OUTSIDE_COMMUNITY)


def parent_of(code: str) -> str:
    """The code of a unit's parent, from its code ('' for a province)."""
    return code[: PARENT_LENGTH.get(len(code), 0)]


def group_of(finding: Finding) -> str | None:
    """The parent code of the group a finding comes from (None: from no group, e.g. not_patrolled)."""
    kind = finding.kind
    if kind == Kind.SLIVER:
        kind = Kind(finding.detail.get("of", Kind.GAP.value))
    if kind in (Kind.GAP, Kind.CASE_IN_GAP):
        return finding.units[0]
    if kind in _PARENT_SECOND:
        return finding.units[1]
    if kind in _CHILD_FIRST:
        return parent_of(finding.units[0])
    return None


def changed_groups(codes: Iterable[str]) -> set[str]:
    """The groups whose findings may differ after the units `codes` were created, changed or retired."""
    found: set[str] = set()
    for code in codes:
        found.add(code)
        if parent_of(code):
            found.add(parent_of(code))
    return found


def within(groups: Iterable[str], unit: str) -> set[str]:
    """The groups a run of `unit` analyses among `groups`: the unit's own and those below it."""
    return {g for g in groups if g.startswith(unit)}


def kept(findings: Iterable[Finding], groups: set[str]) -> list[Finding]:
    """The findings of a stored report that no group in `groups` produced (they stand as they were)."""
    return [f for f in findings if group_of(f) not in groups]
