"""Unit levels, unit codes and grid kinds: the one place that knows their format.

Above the county, GB/T 2260 gives the province 2 digits (41 Henan) and the city/prefecture 2 more
(4116 Zhoukou); the county adds 2 (411681 Xiangcheng). Below it, 3 digits per level: street/town,
community/village, grid, micro-grid (Beijing DB11/T 2157-2023, following GB/T 30428.1). A unit's
parent is its code minus its own level's digits; codes nest by prefix.

Province and city units are optional: a deployment of one county has none, and its county is a
top unit. When they are there, a county's parent is its city and a city's its province.

>>> level_of("411681001002014")
<Level.GRID: 'grid'>
>>> parent_code("411681001002014")
'411681001002'
>>> parent_code("411681"), parent_code("4116"), parent_code("41")
('4116', '41', None)
"""

from __future__ import annotations

import functools
import itertools
import re
from enum import StrEnum

from errors import Invalid


class Level(StrEnum):
    """The levels of the hierarchy, from the province down."""

    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"
    STREET = "street"
    COMMUNITY = "community"
    GRID = "grid"
    MICRO_GRID = "micro_grid"


CODE_LENGTH = {
    Level.PROVINCE: 2,
    Level.CITY: 4,
    Level.COUNTY: 6,
    Level.STREET: 9,
    Level.COMMUNITY: 12,
    Level.GRID: 15,
    Level.MICRO_GRID: 18,
}
# How pages, documents and messages name a level: Chinese first, English beside it.
LEVEL_NAMES = {
    Level.PROVINCE: "省 Province",
    Level.CITY: "市 City",
    Level.COUNTY: "县 County",
    Level.STREET: "街道 Street",
    Level.COMMUNITY: "社区 Community",
    Level.GRID: "网格 Grid",
    Level.MICRO_GRID: "微网格 Micro-grid",
}
LEVEL_BY_LENGTH = {length: level for level, length in CODE_LENGTH.items()}
LEVELS = tuple(Level)
# A code's length -> its parent's (4 -> 2, 6 -> 4, 9 -> 6 ...): for hot loops that need no re-check.
PARENT_LENGTH = {CODE_LENGTH[lv]: CODE_LENGTH[up] for up, lv in itertools.pairwise(LEVELS)}
# Grids and micro-grids are what cases are assigned to; the levels above are administrative.
GRID_LEVELS = (Level.GRID, Level.MICRO_GRID)
# Above the county (GB/T 2260 regions): optional, a county may be stored without them.
REGION_LEVELS = (Level.PROVINCE, Level.CITY)
# A unit of these levels may be stored without its parent (the top of a deployment).
TOP_LEVELS = (Level.PROVINCE, Level.CITY, Level.COUNTY)

# The digits each level adds to its parent's code. Every segment but a grid's refuses all zeros:
# GB/T 2260 never numbers a city or county 00 (4100 and 410000 are the province itself), and a
# street, community or micro-grid 000 is a typo; a grid 000 is an undivided community.
_TWO = "(0[1-9]|[1-9][0-9])"
_THREE = "(00[1-9]|0[1-9][0-9]|[1-9][0-9]{2})"
_SEGMENT = {
    Level.PROVINCE: "[1-9][0-9]",
    Level.CITY: _TWO,
    Level.COUNTY: _TWO,
    Level.STREET: _THREE,
    Level.COMMUNITY: _THREE,
    Level.GRID: "[0-9]{3}",
    Level.MICRO_GRID: _THREE,
}


def _body(level: Level) -> str:
    return "".join(_SEGMENT[lv] for lv in LEVELS[: LEVELS.index(level) + 1])


# One anchored pattern per level, and one for any unit: the API's query and body checks, the
# validation of imports and the units table's CHECK (migrations 0016) all use these.
CODE_PATTERNS: dict[Level, str] = {level: f"^{_body(level)}$" for level in LEVELS}
CODE_PATTERN = "^(" + "|".join(_body(level) for level in LEVELS) + ")$"
GRID_PATTERN = CODE_PATTERNS[Level.GRID]
_LEVEL_RE = {level: re.compile(pattern) for level, pattern in CODE_PATTERNS.items()}
class GridKind(StrEnum):
    """Base grids are urban (compounds, buildings) or rural (villages); special ones overlay them."""

    URBAN = "urban"
    RURAL = "rural"
    SPECIAL = "special"


class SpecialType(StrEnum):
    """What a special (dedicated) grid covers."""

    INDUSTRIAL_PARK = "industrial_park"
    BUSINESS_DISTRICT = "business_district"
    SCHOOL = "school"
    HOSPITAL = "hospital"
    GOVERNMENT = "government"
    ENTERPRISE = "enterprise"
    OTHER = "other"


class CodeError(Invalid):
    """A unit code that does not follow the format."""


def check_code(code: str) -> str:
    """Return `code` if it is a well-formed unit code, else raise CodeError saying why."""
    # By length, one level's pattern (not every alternative of CODE_PATTERN: an import checks each
    # code several times); fullmatch, as `$` would let a trailing newline through.
    level = LEVEL_BY_LENGTH.get(len(code)) if isinstance(code, str) else None
    if level is None or not _LEVEL_RE[level].fullmatch(code):
        raise CodeError(_why(code))
    return code


def _why(code: object) -> str:
    """What is wrong with a code that fails CODE_PATTERN."""
    if not isinstance(code, str) or not code.isascii() or not code.isdigit():
        return f"unit code {code!r} must be digits only"
    level = LEVEL_BY_LENGTH.get(len(code))
    if level is None:
        return (
            f"unit code {code!r} has {len(code)} digits: a unit code has 2, 4, 6, 9, 12, 15 or 18 "
            "(province 2 + city 2 + county 2 + street 3 + community 3 + grid 3 + micro-grid 3)"
        )
    if level == Level.PROVINCE:
        return f"province code {code!r} cannot start with 0 (GB/T 2260 provinces are 11 to 82)"
    zero = "00" if len(code) <= CODE_LENGTH[Level.COUNTY] else "000"
    return (
        f"unit code {code!r} ({level}) has a part {zero}, which only an undivided community's "
        "grid may use (000); GB/T 2260 numbers no city or county 00"
    )


def is_code(code: str, level: Level | None = None) -> bool:
    """Whether `code` is a well-formed code (of `level`, when given)."""
    if not isinstance(code, str) or (level is not None and LEVEL_BY_LENGTH.get(len(code)) != level):
        return False
    try:
        check_code(code)
    except CodeError:
        return False
    return True


# An import asks for each code's level and parent a dozen times (validation, parents, storing):
# 150,000 regular-expression checks for 13,000 units, a tenth of the import (issue 19). The cache
# holds a province (524,000 units): a smaller one is emptied by every pass over the features.
@functools.lru_cache(maxsize=1 << 20)
def level_of(code: str) -> Level:
    """The level a code belongs to, from its length."""
    return LEVEL_BY_LENGTH[len(check_code(code))]


@functools.lru_cache(maxsize=1 << 20)
def parent_code(code: str) -> str | None:
    """The code of the parent unit, or None for a province (a county's is its city's code)."""
    level = level_of(code)
    if level == Level.PROVINCE:
        return None
    return code[: CODE_LENGTH[LEVELS[LEVELS.index(level) - 1]]]


def required_parent(code: str) -> str | None:
    """The parent that must exist before `code` may: None for a province, city or county (regions
    above the county are optional), else the parent's code."""
    return None if level_of(code) in TOP_LEVELS else parent_code(code)


def ancestor_codes(code: str) -> list[str]:
    """Codes of every level above `code`, from the province down (excluding `code` itself).

    Regions above the county are named whether or not a deployment stores them: look them up,
    do not assume they exist.
    """
    level = level_of(code)
    return [code[: CODE_LENGTH[above]] for above in LEVELS[: LEVELS.index(level)]]


def is_descendant(code: str, ancestor: str) -> bool:
    """True when `code` lies strictly below `ancestor` in the hierarchy."""
    return len(code) > len(ancestor) and code.startswith(ancestor)


def county_of(code: str) -> str:
    """The code of the county a unit lies in (a county's own code for a county)."""
    return check_code(code)[: CODE_LENGTH[Level.COUNTY]]


def unit_above(code: str) -> str:
    """The unit one level up (the parent); a county, the top, is its own."""
    return parent_code(code) or code
