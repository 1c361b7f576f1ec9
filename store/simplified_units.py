"""The table of simplified unit outlines per zoom band (migration 0017): SQL and row mapping only.

Rows are made by services/tile_precompute.py; store/tiles.py cuts tiles from them up to z12.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo.codes import CODE_LENGTH, LEVEL_BY_LENGTH, TOP_LEVELS, Level
from geo.zoom_bands import BANDS
from store.geometry import from_wkb_array

TOP_LENGTHS = [CODE_LENGTH[level] for level in TOP_LEVELS]
# Levels simplified per county (below it, above the micro-grid: micro-grids are drawn from z14).
COUNTY_LENGTHS = [CODE_LENGTH[Level.STREET], CODE_LENGTH[Level.COMMUNITY], CODE_LENGTH[Level.GRID]]
# The last band stores every level any band does: a unit missing from it is missing everywhere.
_ALL_LEVELS_BAND = BANDS[-1].number


@dataclass
class CurrentOutlines:
    """Current units to simplify: ids, codes, levels, names, kinds, special types, Web Mercator outlines."""

    ids: list[int]
    codes: list[str]
    levels: list[Level]
    names: list[str]
    kinds: list[str | None]
    special_types: list[str | None]
    geoms: np.ndarray


def state(session: Session) -> tuple[int, int]:
    """(current boundary generation, generation the table was last brought up to)."""
    row = session.execute(
        text(
            "SELECT (SELECT n FROM unit_change_count WHERE id = 1) AS now, "
            "(SELECT generation FROM unit_simplified_state WHERE id = 1) AS made"
        )
    ).one()
    return int(row.now or 0), int(row.made if row.made is not None else -1)


def mark_made(session: Session, generation: int) -> None:
    """Record that the table holds the simplified outlines of boundary generation `generation`."""
    session.execute(text("UPDATE unit_simplified_state SET generation = :g WHERE id = 1"), {"g": generation})


def stale_codes(session: Session) -> list[str]:
    """Codes whose simplified rows are missing, made from an older version, or of a retired unit."""
    sql = """
        SELECT v.code FROM unit_versions v
        LEFT JOIN unit_simplified s ON s.band = :band AND s.code = v.code
        WHERE v.valid_to IS NULL AND length(v.code) <= :longest AND s.source_id IS DISTINCT FROM v.id
        UNION
        SELECT s.code FROM unit_simplified s
        LEFT JOIN unit_versions v ON v.code = s.code AND v.valid_to IS NULL
        WHERE s.band = :band AND v.id IS NULL"""
    params = {"band": _ALL_LEVELS_BAND, "longest": CODE_LENGTH[Level.GRID]}
    return list(session.execute(text(sql), params).scalars())


def current_outlines(session: Session, *, top: bool = False, counties: Iterable[str] = ()) -> CurrentOutlines:
    """The current units of the levels above the county (`top`) or below it in `counties`, in 3857."""
    if top:
        where, params = "length(v.code) = ANY(:lengths)", {"lengths": TOP_LENGTHS}
    else:
        where = "length(v.code) = ANY(:lengths) AND left(v.code, 6) = ANY(:counties)"
        params = {"lengths": COUNTY_LENGTHS, "counties": list(counties)}
    rows = session.execute(
        text(
            f"""SELECT v.id, v.code, v.name, v.kind, v.special_type,
                       ST_AsBinary(ST_Transform(ST_SetSRID(v.geom, 4326), 3857)) AS wkb
                FROM unit_versions v WHERE v.valid_to IS NULL AND {where} ORDER BY v.code"""
        ),
        params,
    ).all()
    return CurrentOutlines(
        ids=[r.id for r in rows],
        codes=[r.code for r in rows],
        levels=[LEVEL_BY_LENGTH[len(r.code)] for r in rows],
        names=[r.name for r in rows],
        kinds=[r.kind for r in rows],
        special_types=[r.special_type for r in rows],
        geoms=from_wkb_array([r.wkb for r in rows]) if rows else np.empty(0, dtype=object),
    )


def delete(session: Session, *, top: bool = False, counties: Iterable[str] = ()) -> None:
    """Drop the rows of the levels above the county (`top`) or of the units below `counties`."""
    if top:
        session.execute(text("DELETE FROM unit_simplified WHERE length(code) = ANY(:l)"), {"l": TOP_LENGTHS})
    counties = list(counties)
    if counties:
        session.execute(
            text("DELETE FROM unit_simplified WHERE left(code, 6) = ANY(:c) AND length(code) = ANY(:l)"),
            {"c": counties, "l": COUNTY_LENGTHS},
        )


def insert(session: Session, band: int, units: CurrentOutlines, geoms: np.ndarray, keep: np.ndarray) -> None:
    """Store the simplified outlines `geoms` of `units` (where `keep`) for `band`."""
    index = np.flatnonzero(keep)
    if not len(index):
        return
    # COPY with the outlines as hex EWKB: arrays of parameters cost as long again to build in psycopg.
    wkbs = shapely.to_wkb(
        shapely.set_srid(geoms[index], 3857), output_dimension=2, hex=True, include_srid=True
    ).tolist()
    cursor = session.connection().connection.cursor()
    columns = "band, level, code, source_id, name, kind, special_type, geom"
    with cursor.copy(f"COPY unit_simplified ({columns}) FROM STDIN") as copy:
        for i, wkb in zip(index.tolist(), wkbs, strict=True):
            row = (band, str(units.levels[i]), units.codes[i], units.ids[i], units.names[i], units.kinds[i])
            copy.write_row((*row, units.special_types[i], wkb))
