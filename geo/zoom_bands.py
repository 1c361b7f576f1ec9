"""Which unit levels a vector tile draws at each zoom, and the zoom bands of simplified outlines.

A level is drawn from the zoom at which its units are readable (a few pixels wide): the province,
its cities and counties at every zoom, streets from z8, communities and grids from z9,
micro-grids from z14 (zooms of 256 px tiles: the map page asks for 512 px tiles, the 256 px tile
of the zoom above, so the page shows only regions and counties up to its z8, streets from its z9,
communities and grids from its z10). A province's first view (page z8) is regions only: 4,000
streets there were a 115 KB tile of purple mesh. Besides, a tile leaves out a level below
the county when it holds more of its units than `FEATURE_BUDGET` (a dense province at z9): only
what is readable is sent, and a tile stays small.

Up to z12 tiles are cut from outlines simplified per zoom band (`BANDS`), made once whenever
boundaries change (services/tile_precompute.py); from z13 from the stored outlines (at z13 a tile
unit is ~1 m: nothing left to simplify that ST_AsMVTGeom's snapping would not).
"""

from __future__ import annotations

from dataclasses import dataclass

from geo.codes import Level

# Zoom (256 px tiles) from which each level is drawn.
MIN_ZOOM = {
    Level.PROVINCE: 0,
    Level.CITY: 0,
    Level.COUNTY: 0,
    Level.STREET: 8,
    Level.COMMUNITY: 9,
    Level.GRID: 9,
    Level.MICRO_GRID: 14,
}
# A tile holding more units of one of these levels leaves that level out (zoom in to see it): at
# 400,000 grids a province-wide tile would be megabytes and unreadable anyway. 4,000 keeps a tile
# under 150 KB gzipped (a grid with its code and name is ~28 bytes gzipped, 5,331 of them made
# 149 KB at 100,000 grids) and still draws every grid of a county of 2,619 in its first view.
BUDGETED = (Level.STREET, Level.COMMUNITY, Level.GRID, Level.MICRO_GRID)
FEATURE_BUDGET = 4000
EARTH_CIRCUMFERENCE_M = 40075016.68557849  # Web Mercator's width in its metres
TOLERANCE_PX = 0.5  # simplify by half a pixel at the band's deepest zoom: nothing visible moves


@dataclass(frozen=True)
class ZoomBand:
    """Zooms `first`..`last` share one simplification of the outlines, `number` in the table."""

    number: int
    first: int
    last: int

    @property
    def tolerance_m(self) -> float:
        """The simplification tolerance, Web Mercator metres: half a 256 px tile pixel at `last`."""
        return TOLERANCE_PX * EARTH_CIRCUMFERENCE_M / (256 * 2**self.last)

    def levels(self) -> tuple[Level, ...]:
        """The levels drawn at some zoom of the band (those stored for it)."""
        return tuple(level for level, z in MIN_ZOOM.items() if z <= self.last)


BANDS = (ZoomBand(0, 0, 6), ZoomBand(1, 7, 8), ZoomBand(2, 9, 10), ZoomBand(3, 11, 12))
SIMPLIFIED_UP_TO = BANDS[-1].last


def band_of(z: int) -> ZoomBand | None:
    """The band of zoom `z`, or None from z13 (tiles are cut from the stored outlines there).

    >>> band_of(5).number, band_of(12).number, band_of(13)
    (0, 3, None)
    """
    return next((b for b in BANDS if b.first <= z <= b.last), None)


def drawn_at(level: Level, z: int) -> bool:
    """Whether a tile of zoom `z` draws `level` at all.

    >>> drawn_at(Level.COUNTY, 3), drawn_at(Level.GRID, 8), drawn_at(Level.GRID, 9)
    (True, False, True)
    """
    return z >= MIN_ZOOM[level]
