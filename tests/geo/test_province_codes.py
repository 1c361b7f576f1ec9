"""Province (2 digits) and city (4 digits) codes above the county, GB/T 2260 (issue 19 §1):
one pattern per level, the hierarchy by prefix, and the synthetic province's nesting."""

from __future__ import annotations

import re

import numpy as np
import pytest
import shapely

from benchmarks.province import SIZES, make_province
from geo.codes import (
    CODE_PATTERN,
    CODE_PATTERNS,
    CodeError,
    Level,
    ancestor_codes,
    check_code,
    is_code,
    level_of,
    parent_code,
    required_parent,
)
from geo.coverage import Kind, Tolerances, Unit, analyse_tree
from geo.settings import Settings

TOL = Tolerances.from_settings(Settings(database_url=None))
GOOD = {
    Level.PROVINCE: "41",
    Level.CITY: "4116",
    Level.COUNTY: "411681",
    Level.STREET: "411681001",
    Level.COMMUNITY: "411681001002",
    Level.GRID: "411681001002014",
    Level.MICRO_GRID: "411681001002014003",
}


@pytest.mark.parametrize(
    ("code", "needle"),
    [
        ("4116810", "has 7 digits"),  # issue 18 §4: ^[0-9]{6,18}$ took it
        ("4", "has 1 digits"),
        ("41168100", "has 8 digits"),
        ("4100", "part 00"),  # the province's own code, not a city
        ("410000", "part 00"),  # GB/T 2260's 6-digit form of a province, not a county
        ("411600", "part 00"),
        ("01", "cannot start with 0"),
        ("411681000", "part 000"),  # a street 000
        ("411681001000", "part 000"),
        ("411681001002014000", "part 000"),
        ("41a6", "digits only"),
        ("４１", "digits only"),  # full-width digits are not ASCII digits
        ("411681\n", "digits only"),  # `$` would match before the newline
    ],
)
def test_malformed_codes_are_refused_with_the_reason(code, needle):
    with pytest.raises(CodeError, match=needle):
        check_code(code)
    assert not is_code(code) and not re.fullmatch(CODE_PATTERN, code)


def test_each_level_has_one_pattern_that_takes_its_codes_only():
    for level, code in GOOD.items():
        assert level_of(code) == level
        for other, pattern in CODE_PATTERNS.items():
            assert bool(re.match(pattern, code)) == (other == level), (code, other)
            assert is_code(code, other) == (other == level)
    assert re.match(CODE_PATTERN, "411681001002000")  # an undivided community's grid


def test_parents_and_ancestors_follow_gb_t_2260_above_the_county():
    assert [parent_code(GOOD[lv]) for lv in Level] == [None, "41", "4116", "411681", "411681001",
                                                       "411681001002", "411681001002014"]  # fmt: skip
    assert ancestor_codes(GOOD[Level.GRID]) == ["41", "4116", "411681", "411681001", "411681001002"]
    # Regions are optional: nothing needs to exist above a county (a county deployment has none).
    assert [required_parent(GOOD[lv]) for lv in (Level.PROVINCE, Level.CITY, Level.COUNTY)] == [None] * 3
    assert required_parent(GOOD[Level.STREET]) == "411681"


def test_the_synthetic_province_nests_by_code_and_tiles_every_parent():
    frame = make_province(SIZES["tiny"], seed=3)
    again = make_province(SIZES["tiny"], seed=3)
    assert frame["code"].tolist() == again["code"].tolist()  # deterministic
    assert shapely.equals_exact(frame.geometry.values, again.geometry.values, 0).all()
    codes = set(frame["code"])
    assert all(is_code(c) for c in codes)
    assert {level_of(c) for c in codes} == set(Level)
    assert all(parent_code(c) in codes for c in codes if c != "41")
    assert shapely.is_valid(frame.geometry.values).all()
    # Every level tiles its parent: the analysis finds no gap, overlap or overhang anywhere.
    units = [Unit(c, g, kind=k) for c, g, k in zip(frame["code"], frame.geometry, frame["kind"], strict=True)]
    findings = analyse_tree(units, TOL)
    geometric = {Kind.GAP, Kind.OVERLAP, Kind.OUTSIDE_PARENT, Kind.SLIVER, Kind.SPECIAL_OUTSIDE_COMMUNITY}
    assert [f for f in findings if f.kind in geometric] == []
    area = shapely.area(frame.geometry.values)
    county = frame["code"].str.len().to_numpy() == 6
    assert np.isclose(area[county].sum(), area[0])  # the counties add up to the province


def test_a_gap_and_an_overlap_between_the_counties_of_a_city_are_found():
    frame = make_province(SIZES["tiny"], seed=3)
    top = frame[frame["code"].str.len() <= 6].set_index("code").geometry
    west, east = top["410101"], top["410102"]
    seam = shapely.intersection(west, east)  # the counties' shared (jittered) edge
    minx, miny, maxx, maxy = seam.bounds
    # City 4101: the west county stops 0.004° short of its east edge (a gap between the two).
    shrunk = shapely.difference(west, shapely.box(minx - 0.004, miny, maxx, maxy))
    # City 4102: the west county reaches 0.004° into its neighbour (an overlap).
    seam2 = shapely.intersection(top["410201"], top["410202"])
    a, b, c, d = seam2.bounds
    grown = shapely.union(top["410201"], shapely.box(a, b + 0.01, c + 0.004, d - 0.01))
    changed = {"410101": shrunk, "410201": grown}
    units = [Unit(code, changed.get(code, geom)) for code, geom in top.items()]
    found = [f for f in analyse_tree(units, TOL) if len(f.units[0]) < 6 or len(f.units) > 1]
    assert {(f.kind, f.units) for f in found} == {
        (Kind.GAP, ("4101",)),
        (Kind.OVERLAP, ("410201", "410202")),
    }
    gap = next(f for f in found if f.kind == Kind.GAP)
    # The gap is exactly what the west county gave up (in lon/lat degrees²).
    assert np.isclose(shapely.area(gap.geometry), shapely.area(west) - shapely.area(shrunk), rtol=1e-6)
