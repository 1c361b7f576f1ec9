"""Bring the simplified outlines of the vector tiles up to date after boundaries changed.

Called in the transaction that changed them (an import, a plan publish), once, after the writes:
it finds the units whose simplified rows are stale (store.simplified_units.stale_codes: new,
changed or retired units, whoever wrote them), simplifies again the levels above the county (a
few hundred outlines) when one of them is stale and, below, every county that holds a stale
unit, in every zoom band, and
records the boundary generation it brought the table up to. Tiles read the table only when that
generation is the current one (a unit written by some other path falls back to the stored
outlines until the next refresh), so a tile never shows an outline older than the units.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from geo.codes import CODE_LENGTH, Level
from geo.outline_simplify import simplify_units
from geo.zoom_bands import BANDS
from store import simplified_units as store


@dataclass(frozen=True)
class Refresh:
    """What a refresh simplified: outlines above the county, counties below, rows written, seconds."""

    top: int
    counties: int
    rows: int
    seconds: float


def refresh(session: Session) -> Refresh:
    """Simplify again what changed since the last refresh, in the caller's transaction."""
    started = time.perf_counter()
    generation, made = store.state(session)
    if generation == made:
        return Refresh(0, 0, 0, 0.0)
    stale = store.stale_codes(session)
    counties = sorted({c[: CODE_LENGTH[Level.COUNTY]] for c in stale if len(c) > CODE_LENGTH[Level.CITY]})
    rows = top = 0
    # Units below the county are simplified with their county's outline kept, so a change below
    # a county leaves the outlines above it as they are: they are made again only when one changed.
    if any(len(c) <= CODE_LENGTH[Level.COUNTY] for c in stale):
        store.delete(session, top=True)
        units = store.current_outlines(session, top=True)
        top = len(units.codes)
        rows += _simplify_and_store(session, units)
    for county in counties:
        store.delete(session, counties=[county])
        rows += _simplify_and_store(session, store.current_outlines(session, counties=[county]))
    store.mark_made(session, generation)
    return Refresh(top, len(counties), rows, time.perf_counter() - started)


def _simplify_and_store(session: Session, units: store.CurrentOutlines) -> int:
    """Simplify `units` for every band that draws their levels and store them; rows written."""
    if not units.codes:
        return 0
    written = 0
    levels = np.array([str(level) for level in units.levels])
    for band in BANDS:
        keep = np.isin(levels, [str(level) for level in band.levels()])
        if not keep.any():
            continue
        index = np.flatnonzero(keep)
        simplified = np.empty(len(units.geoms), dtype=object)
        simplified[index] = simplify_units(
            [units.codes[i] for i in index],
            [units.levels[i] for i in index],
            [units.kinds[i] for i in index],
            units.geoms[index],
            band.tolerance_m,
        )
        store.insert(session, band.number, units, simplified, keep)
        written += int(keep.sum())
    return written

