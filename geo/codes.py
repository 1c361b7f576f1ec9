"""Unit levels, unit codes and grid kinds: the one place that knows their format.

A unit code is the GB/T 2260 county code (6 digits) followed by 3 digits per level below it:
street/town, community/village, grid, micro-grid. The parent of a unit is its code minus the
last 3 digits (Beijing DB11/T 2157-2023, following GB/T 30428.1).

>>> level_of("411681001002014")
<Level.GRID: 'grid'>
>>> parent_code("411681001002014")
'411681001002'
"""

from __future__ import annotations

import re
from enum import StrEnum

from errors import Invalid


class Level(StrEnum):
    """The levels of the hierarchy, from the county down."""

    COUNTY = "county"
    STREET = "street"
    COMMUNITY = "community"
    GRID = "grid"
    MICRO_GRID = "micro_grid"


CODE_LENGTH = {
    Level.COUNTY: 6,
    Level.STREET: 9,
    Level.COMMUNITY: 12,
    Level.GRID: 15,
    Level.MICRO_GRID: 18,
}
LEVEL_BY_LENGTH = {length: level for level, length in CODE_LENGTH.items()}
LEVELS = tuple(Level)
# Grids and micro-grids are what cases are assigned to; the levels above are administrative.
GRID_LEVELS = (Level.GRID, Level.MICRO_GRID)
# The database CHECK constraint uses the same pattern.
CODE_PATTERN = r"^[0-9]{6}([0-9]{3}){0,4}$"
_CODE_RE = re.compile(CODE_PATTERN)


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
    if not isinstance(code, str) or not _CODE_RE.match(code):
        raise CodeError(
            f"unit code {code!r} is not 6, 9, 12, 15 or 18 digits "
            "(county 6 + street 3 + community 3 + grid 3 + micro-grid 3)"
        )
    if code.endswith("000") and len(code) > 6 and len(code) != CODE_LENGTH[Level.GRID]:
        # Only a grid may be 000 (an undivided community); a street or community 000 is a typo.
        raise CodeError(f"unit code {code!r} ends in 000, which only an undivided community's grid may use")
    return code


def level_of(code: str) -> Level:
    """The level a code belongs to, from its length."""
    return LEVEL_BY_LENGTH[len(check_code(code))]


def parent_code(code: str) -> str | None:
    """The code of the parent unit, or None for a county."""
    check_code(code)
    return code[:-3] if len(code) > CODE_LENGTH[Level.COUNTY] else None


def ancestor_codes(code: str) -> list[str]:
    """Codes of every unit above `code`, from the county down (excluding `code` itself)."""
    check_code(code)
    return [code[:n] for n in range(6, len(code), 3)]


def is_descendant(code: str, ancestor: str) -> bool:
    """True when `code` lies strictly below `ancestor` in the hierarchy."""
    return len(code) > len(ancestor) and code.startswith(ancestor)


def county_of(code: str) -> str:
    """The code of the county a unit lies in (a county's own code for a county)."""
    return check_code(code)[: CODE_LENGTH[Level.COUNTY]]


def unit_above(code: str) -> str:
    """The unit one level up (the parent); a county, the top, is its own."""
    return parent_code(code) or code
