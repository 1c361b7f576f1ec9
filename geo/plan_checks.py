"""Checks of a draft plan beyond coverage (geo.plans.validate): warnings that never refuse a publish."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from geo.codes import parent_code
from geo.plans import WARNING, PlanState, Problem, changes
from geo.validation import UnitFeature


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
