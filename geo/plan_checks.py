"""Checks of a draft plan beyond coverage (geo.plan_validation): warnings that never refuse a publish."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from geo.codes import GridKind, SpecialType, parent_code
from geo.plan_validation import ERROR, WARNING, Problem
from geo.plans import PlanState, changes
from geo.validation import UnitFeature


def checks(base: Mapping[str, UnitFeature], state: PlanState) -> list[Problem]:
    """Every check of this module: special types (errors), then names shared by siblings (warnings)."""
    return special_types(base, state) + same_names(base, state)


def same_names(base: Mapping[str, UnitFeature], state: PlanState) -> list[Problem]:
    """A warning for each name two or more sibling units share, where the draft made one of them.

    Names are what people say on the phone and in reports ("the grid by the school"): two
    siblings with one name send a case to the wrong grid. Duplicates the draft did not touch
    were there before and are not this draft's doing.
    """
    touched = {c.code for c in changes(base, state) if c.after is not None}
    siblings: dict[tuple[str, str], list[UnitFeature]] = defaultdict(list)
    for code, unit in state.units.items():
        siblings[(parent_code(code), unit.name.strip())].append(unit)
    problems = []
    for (parent, name), units in sorted(siblings.items()):
        codes = tuple(sorted(u.code for u in units))
        if len(codes) < 2 or not touched.intersection(codes):
            continue
        message = f"{len(codes)} units below {parent} are named {name!r}: {', '.join(codes)}"
        problems.append(Problem("same_name", WARNING, codes, message, units[0].geometry))
    return problems


def special_types(base: Mapping[str, UnitFeature], state: PlanState) -> list[Problem]:
    """An error for each unit the draft makes whose kind and special type disagree.

    A special grid needs one of the special types (domain.md §1); a base grid has none. The store
    refuses anything else, so a publish would fail on it: the planner hears why before.
    """
    problems = []
    for change in changes(base, state):
        unit = change.after
        if unit is None or unit.kind is None:
            continue
        if unit.kind == GridKind.SPECIAL and unit.special_type not in set(SpecialType):
            message = f"{unit.code}: a special grid needs a special type, one of {', '.join(SpecialType)}"
        elif unit.kind != GridKind.SPECIAL and unit.special_type is not None:
            message = f"{unit.code}: a {unit.kind} grid has no special type (it has {unit.special_type!r})"
        else:
            continue
        problems.append(Problem("special_type", ERROR, (unit.code,), message, unit.geometry))
    return problems
