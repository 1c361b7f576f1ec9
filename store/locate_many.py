"""The assignment rule for every point of a table at once: store.locate's answers, set-based.

A redraw of a whole county assigns tens of thousands of open cases again: one `store.locate`
round trip each took ~5 ms a case (329 s for the 70,336 open cases of a county at 1 M cases).
Here one statement asks for every point: first which grid is responsible (the piece join of
store.locate.assign_points_table, the rule's order written once there), then, for the points
whose grid the caller wants explained, store.locate's own query for one point run for each row
of a table (a LATERAL join) and its rows made into answers by store.locate.answer_of. Nothing of
the rule is written again here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from itertools import groupby

from sqlalchemy import Row, text
from sqlalchemy.orm import Session

from geo.assignment import Assignment, UnitRef
from geo.codes import CODE_LENGTH, Level, ancestor_codes
from geo.crs import STORAGE_SRID
from store.locate import _NEAREST, _nearest_sql, answer_of, assign_points_table
from store.units import units_at, valid_at_sql


def responsible_grids(session: Session, points_table: str, *, tolerance_m: float) -> dict[int, str | None]:
    """The responsible current grid of every point of `points_table` (id, geom), None if none."""
    assign_points_table(session, points_table, tolerance_m=tolerance_m, pieces=True)
    rows = session.execute(text("SELECT id, grid_code FROM point_assignments"))
    return {case_id: grid for case_id, grid in rows}


def locate_table(
    session: Session, points_table: str, *, tolerance_m: float, at: datetime | None = None
) -> dict[int, Assignment]:
    """store.locate's answer for every point of `points_table` (id bigint, geom Point 4490), by id."""
    if not points_table.isidentifier():
        raise ValueError(f"not a table name: {points_table!r}")
    session.execute(text("SET LOCAL jit = off"))  # compiling took 2.8 s of a 5 s statement
    session.execute(
        text(f"CREATE INDEX IF NOT EXISTS {points_table}_geom_idx ON {points_table} USING gist (geom)")
    )
    session.execute(text(f"ANALYZE {points_table}"))
    session.execute(text(f"DROP TABLE IF EXISTS {_HITS}"))
    params = {"at": at}
    covering = _covering_sql(points_table, at)
    session.execute(text(f"CREATE TEMP TABLE {_HITS} ON COMMIT DROP AS {covering}"), params)
    # The nearest grid of each point no grid covers: store.locate's own search, point by point
    # (a few in a hundred of a county's cases).
    session.execute(
        text(
            f"""INSERT INTO {_HITS}
                SELECT pt.id, n.code, '{_NEAREST}', n.name, n.kind, n.version, n.distance_m
                FROM {points_table} pt CROSS JOIN LATERAL ({_nearest_sql(at, point="pt.geom")}) n
                WHERE NOT EXISTS (SELECT 1 FROM {_HITS} h WHERE h.point_id = pt.id AND h.level = 'grid')"""
        ),
        params,
    )
    # Points with the same rows (inside the same grid, micro-grid and parents) get the same
    # answer: the points are grouped by their rows here, and one of each group is answered
    # (70,000 cases of a county lie in a few thousand such places; 300,000 rows read and grouped
    # in Python took 15 s on a busy machine).
    groups = session.execute(
        text(
            f"""SELECT min(id) AS first, array_agg(id) AS ids
                FROM (SELECT pt.id, coalesce(string_agg(
                             CAST(ROW(h.code, h.level, h.name, h.kind, h.version, h.distance_m) AS text),
                             ';' ORDER BY h.level, h.code), '') AS same
                      FROM {points_table} pt LEFT JOIN {_HITS} h ON h.point_id = pt.id
                      GROUP BY pt.id) keyed
                GROUP BY same"""
        )
    ).all()
    rows = session.execute(
        text(
            f"""SELECT pt.id AS point_id, h.code, h.level, h.name, h.kind, h.version, h.distance_m
                FROM unnest(CAST(:first AS bigint[])) AS pt(id) LEFT JOIN {_HITS} h ON h.point_id = pt.id
                ORDER BY pt.id, h.level, h.code"""
        ),
        {"first": [g.first for g in groups]},
    )
    answers = _answers(session, rows, tolerance_m, at)
    return {point_id: answers[g.first] for g in groups for point_id in g.ids}


_HITS = "point_hits"  # (point_id, code, level, name, kind, version, distance_m): _locate_sql's rows


def _covering_sql(points_table: str, at: datetime | None) -> str:
    """store.locate's covering units (_covering_sql) of every point: the pieces drive the join,
    each probing the points' index (one probe per point, the planner's choice, costs ~0.5 ms)."""
    return f"""
        SELECT DISTINCT pt.id AS point_id, p.code, p.level, v.name, p.kind, v.version,
               NULL::float8 AS distance_m
        FROM unit_parts p
        JOIN unit_versions v ON v.id = p.version_id
        JOIN LATERAL (
            SELECT pt.id FROM {points_table} pt
            WHERE pt.geom && p.geom AND ST_Intersects(p.geom, pt.geom)
            OFFSET 0  -- keep the probe per piece (no flattening into a points-driven join)
        ) pt ON true
        WHERE {valid_at_sql("p", "at" if at else None)}
          AND p.geom && (SELECT ST_SetSRID(ST_Extent(geom)::geometry, {STORAGE_SRID}) FROM {points_table})"""


def _answers(
    session: Session, rows: Iterable, tolerance_m: float, at: datetime | None
) -> dict[int, Assignment]:
    """Each point's answer from its rows (ordered by point), by store.locate.answer_of."""
    by_point = [
        (point_id, [r for r in group if r.code is not None]) for point_id, group in groupby(rows, key=_point)
    ]
    parents = _parents(session, {r.code for _, hits in by_point for r in hits if r.level in _GRID_ROWS}, at)
    return {
        point_id: answer_of(session, hits, tolerance_m=tolerance_m, at=at, parents=parents)
        for point_id, hits in by_point
    }


_GRID_ROWS = (Level.GRID, _NEAREST)  # rows naming a grid: the answer names its parents


def _point(row: Row) -> int:
    return row.point_id


def _parents(session: Session, grids: set[str], at: datetime | None) -> dict[str, UnitRef]:
    """The units above `grids` (county and below), named at once: an answer names its grid's
    parents even where the point lies outside them (store.locate looks each up then)."""
    wanted = {c for g in grids for c in ancestor_codes(g) if len(c) >= CODE_LENGTH[Level.COUNTY]}
    return {
        code: UnitRef(code, unit.name, unit.level)
        for code, unit in units_at(session, sorted(wanted), at).items()
    }
