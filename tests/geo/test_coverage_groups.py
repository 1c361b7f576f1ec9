"""Groups of a coverage run (issue 19 §2): which are told exact at once (geo.coverage_exact), which
group a finding comes from and which groups a publish can change (geo.coverage_groups)."""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, box

from geo.coverage import Finding, Kind, Unit, analyse_parent
from geo.coverage_exact import groups_to_analyse
from geo.coverage_groups import changed_groups, group_of, kept, within
from tests.geo.test_coverage import COMMUNITY, PARENT, TOL, grid, quadrants, storage


def _todo(groups: list[tuple[Unit, list[Unit]]]) -> list[int]:
    overlay = np.array([c.kind == "special" for _, cs in groups for c in cs], dtype=bool)
    return groups_to_analyse(groups, overlay)


def test_groups_tiled_vertex_for_vertex_are_exact_and_the_others_are_analysed():
    clean = (PARENT, [grid(i, g) for i, g in enumerate(quadrants(), 1)])
    holed = quadrants()
    holed[0] = holed[0].difference(box(50, 250, 70, 280))
    with_hole = (PARENT, [grid(i, g) for i, g in enumerate(holed, 1)])
    inside = (PARENT, [*clean[1], grid(901, box(10, 10, 50, 50), kind="special")])
    outside = (PARENT, [*clean[1], grid(901, box(380, 10, 420, 50), kind="special")])
    two_special = (PARENT, [*clean[1], *(grid(n, box(10, 10, 50, 50), kind="special") for n in (901, 902))])
    childless = (PARENT, [])
    # One-part MultiPolygons (as the store gives them) compare equal to the Polygon of the union.
    multi = (
        Unit(COMMUNITY, MultiPolygon([PARENT.geometry])),
        [Unit(c.code, MultiPolygon([c.geometry]), kind=c.kind) for c in clean[1]],
    )
    groups = [clean, with_hole, inside, outside, two_special, childless, multi]
    assert _todo(groups) == [1, 3, 4, 5]
    # The exact groups indeed have nothing to find; each other group has its finding.
    for number, (parent, kids) in enumerate(groups):
        found = [f for f in analyse_parent(parent, kids, TOL) if f.geometry is not None]
        assert bool(found) == (number in (1, 3, 4, 5)), number


def test_a_child_drawn_over_its_neighbour_is_not_exact_even_if_the_union_matches():
    cells = quadrants()
    cells[0] = box(0, 200, 210, 400)  # over its eastern neighbour by 10 m
    assert _todo([(PARENT, [grid(i, g) for i, g in enumerate(cells, 1)])]) == [0]


def test_each_finding_belongs_to_the_group_of_its_parent():
    g1, g2 = f"{COMMUNITY}001", f"{COMMUNITY}002"
    area = storage(box(0, 0, 1, 1))

    def finding(kind: Kind, units: tuple[str, ...], **detail) -> Finding:
        return Finding(kind, units, area, 1.0, detail)

    assert group_of(finding(Kind.GAP, (COMMUNITY,))) == COMMUNITY
    assert group_of(finding(Kind.OVERLAP, (g1, g2))) == COMMUNITY
    assert group_of(finding(Kind.OUTSIDE_PARENT, (g1, COMMUNITY))) == COMMUNITY
    assert group_of(finding(Kind.SLIVER, (g1, g2), of="overlap")) == COMMUNITY
    assert group_of(finding(Kind.SLIVER, (COMMUNITY,), of="gap")) == COMMUNITY
    assert group_of(Finding(Kind.NO_STAFF, (g1,), None, None)) == COMMUNITY
    assert group_of(finding(Kind.OVERLAP, ("410201", "410202"))) == "4102"
    assert group_of(Finding(Kind.NOT_PATROLLED, (g1,), None, None)) is None
    # A grid changed: its community's group and its own (its micro-grids); the street is not.
    assert changed_groups([g1]) == {g1, COMMUNITY}
    assert within({g1, COMMUNITY, "4102"}, COMMUNITY) == {g1, COMMUNITY}
    other = finding(Kind.GAP, ("419999001002",))
    assert kept([finding(Kind.GAP, (COMMUNITY,)), other], {COMMUNITY}) == [other]
    assert shapely.is_valid(area)
