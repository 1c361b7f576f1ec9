"""Which open cases a published redraw moves: those whose responsible grid is no longer the grid
they are on (the rule says which grid is responsible: geo.assignment). What a moved case becomes,
and the history entry saying so, is cases.workflow.redraw."""

from __future__ import annotations

from collections.abc import Mapping


def moved(on: Mapping[int, str | None], responsible: Mapping[int, str | None]) -> list[int]:
    """The ids (ascending) of the cases whose responsible grid differs from the grid they are on;
    None is no grid (a case nobody covers now, or covered before).

    >>> moved({1: "411681001001001", 2: "411681001001002", 3: None}, {1: "411681001001001", 2: None, 3: None})
    [2]
    """
    return sorted(case_id for case_id, grid in on.items() if responsible.get(case_id) != grid)
