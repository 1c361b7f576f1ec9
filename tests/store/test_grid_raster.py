"""Bulk assignment through the stored grid raster: same answers as the piece join, kept current."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from shapely.geometry import MultiPolygon, box
from sqlalchemy import text

from geo.codes import Level
from geo.grid_raster import EDGE, grid_raster
from geo.validation import UnitFeature
from services.imports import import_units
from store.grid_raster import FAR, cell_blocks, current_raster
from store.locate import assign_points_table
from store.units import write_units
from tests import factories as f
from tests.places import points_table

HALF = f.SIZE / 2


@pytest.fixture
def county(session, settings, tmp_path):
    """Grids 001-003, a school over 001/003, the south-east quarter a gap (tests.factories)."""
    path = f.write_geojson(tmp_path / "county.geojson", f.overlay_features())
    import_units(session, path, valid_from=datetime(2024, 1, 1, tzinfo=UTC), settings=settings)
    return session


def answers(session, **kwargs) -> dict[int, tuple]:
    """Bulk-assign `pts`; {id: (status, grid_code, distance_m rounded to 1 µm)}."""
    assign_points_table(session, "pts", tolerance_m=30, **kwargs)
    rows = session.execute(text("SELECT id, status, grid_code, distance_m FROM point_assignments"))
    return {
        r.id: (r.status, r.grid_code, None if r.distance_m is None else round(r.distance_m, 6)) for r in rows
    }


def tricky_points() -> list[tuple[float, float]]:
    """Random points over and around the county, plus points on shared edges, corners and the
    school's outline, and points just outside the county at 10, 25, 35 and 500 metres."""
    rng = np.random.default_rng(5)
    xy = list(zip(rng.uniform(f.X0 - 0.003, f.X0 + f.SIZE + 0.003, 1500),
                  rng.uniform(f.Y0 - 0.003, f.Y0 + f.SIZE + 0.003, 1500), strict=True))  # fmt: skip
    mid_x, mid_y = f.X0 + HALF, f.Y0 + HALF
    xy += [(mid_x, f.Y0 + k * 0.001) for k in range(41)]  # the vertical shared edge
    xy += [(f.X0 + k * 0.001, mid_y) for k in range(41)]  # the horizontal one
    xy += [(mid_x, mid_y), (f.X0, f.Y0), (f.X0 + 0.005, mid_y - 0.003), (f.X0 + 0.008, mid_y + 0.003)]
    xy += [(f.X0 + 0.01, f.Y0 - m / 111_000) for m in (10, 25, 35, 500)]
    return [(float(x), float(y)) for x, y in xy]


def test_raster_gives_the_piece_joins_answer_for_every_point(county):
    points_table(county, tricky_points())
    by_raster = answers(county)
    assert current_raster(county, tolerance_m=30).rebuilt is False  # built by the first call
    by_pieces = answers(county, at=datetime.now(UTC))
    assert by_raster == by_pieces
    statuses = {a[0] for a in by_raster.values()}
    assert statuses == {"assigned", "snapped", "unassigned"}
    assert by_raster[len(by_raster) - 1] == ("unassigned", None, None)  # 500 m outside
    assert by_raster[len(by_raster) - 4][0:2] == ("snapped", f.grid_code(3))  # 10 m outside


def test_points_without_coordinates_or_far_away_are_unassigned(county):
    county.execute(text("CREATE TEMP TABLE pts (id bigint PRIMARY KEY, geom geometry(Point, 4490))"))
    county.execute(
        text(
            """INSERT INTO pts VALUES
               (1, ST_SetSRID(ST_MakePoint('NaN', 'NaN'), 4490)),
               (2, ST_SetSRID('POINT EMPTY'::geometry, 4490)),
               (3, ST_SetSRID(ST_MakePoint(100.0, 20.0), 4490)),
               (4, ST_SetSRID(ST_MakePoint(:x, :y), 4490))"""
        ),
        {"x": f.X0 + 0.001, "y": f.Y0 + f.SIZE - 0.001},
    )
    assert answers(county) == {
        1: ("unassigned", None, None),
        2: ("unassigned", None, None),
        3: ("unassigned", None, None),
        4: ("assigned", f.grid_code(1), 0.0),
    }


def test_a_redraw_makes_the_raster_stale_and_the_next_run_sees_it(county):
    inside_old_3 = (f.X0 + 0.015, f.Y0 + 0.001)  # south-west grid 003, near its south edge
    points_table(county, [inside_old_3])
    assert answers(county)[0] == ("assigned", f.grid_code(3), 0.0)
    assert current_raster(county, tolerance_m=30).rebuilt is False
    # Grid 003 loses its southern 300 m: the point now lies in no grid, farther than 30 m.
    redrawn = box(f.X0, f.Y0 + 0.003, f.X0 + HALF, f.Y0 + HALF)
    write_units(
        county,
        [UnitFeature(code=f.grid_code(3), name="网格三", level=Level.GRID, geometry=MultiPolygon([redrawn]))],
        valid_from=datetime(2025, 1, 1, tzinfo=UTC),
    )
    assert current_raster(county, tolerance_m=30).rebuilt is True
    assert answers(county)[0] == ("unassigned", None, None)


def test_another_tolerance_rebuilds_the_raster(county):
    just_outside = (f.X0 + 0.01, f.Y0 - 40 / 111_000)  # 40 m south of grid 003
    points_table(county, [just_outside])
    assert answers(county)[0][0] == "unassigned"
    assign_points_table(county, "pts", tolerance_m=50)
    status, code = county.execute(text("SELECT status, grid_code FROM point_assignments")).one()
    assert (status, code) == ("snapped", f.grid_code(3))
    assert current_raster(county, tolerance_m=50).rebuilt is False


@pytest.mark.usefixtures("session")
def test_without_grids_every_point_is_unassigned(session):
    points_table(session, [(f.X0, f.Y0), (f.X0 + 0.01, f.Y0 + 0.01)])
    assert answers(session) == {0: ("unassigned", None, None), 1: ("unassigned", None, None)}


def test_stored_cells_point_at_blocks_holding_each_cells_candidates():
    # A 12 x 12 partition (one edge list per shared boundary, so blocks repeat) and a tolerance.
    squares = [box(f.X0 + i * 0.002, f.Y0 + j * 0.002, f.X0 + (i + 1) * 0.002, f.Y0 + (j + 1) * 0.002)
               for i in range(12) for j in range(12)]  # fmt: skip
    codes = [f.grid_code(k + 1) for k in range(len(squares))]
    raster = grid_raster(codes, [None] * len(codes), np.array(squares, dtype=object), near=(0.0004, 0.0004))
    values, blocks = cell_blocks(raster)

    def block(cell: int) -> tuple[int, list[int]]:
        at = -int(values[cell]) - 1  # 0-based position of the header
        return int(blocks[at]), blocks[at + 1 : at + 1 + abs(int(blocks[at]))].tolist()

    edge = np.flatnonzero(raster.values <= EDGE)
    assert len(edge) > 100 and len(raster.near_cells) > 100
    for cell in edge:
        n = EDGE - int(raster.values[cell])
        candidates = raster.candidates[raster.start[n] : raster.start[n + 1]].tolist()
        assert block(cell) == (len(candidates), candidates)
    for k, cell in enumerate(raster.near_cells):
        grids = raster.near_candidates[raster.near_start[k] : raster.near_start[k + 1]].tolist()
        assert block(cell) == (-len(grids), grids)
    plain = np.setdiff1d(np.arange(raster.values.size), np.concatenate([edge, raster.near_cells]))
    assert (values[plain] == np.where(raster.values[plain] >= 0, raster.values[plain], FAR)).all()
    assert (values[edge] <= -2).all()  # never read as FAR
    written = len(edge) + len(raster.near_cells) + len(raster.candidates) + len(raster.near_candidates)
    assert len(blocks) < written / 3  # cells along one boundary share one block
