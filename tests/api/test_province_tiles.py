"""Vector tiles of a province (issue 19 §2): cut from outlines simplified per zoom band as coverages
(neighbours keep sharing their edges at every zoom), only the levels readable at a zoom, no unit
lost where its level is drawn, and a cache that a publish invalidates. The tiny synthetic province
(2 cities × 2 counties) on a committed database; tiles decoded by mapbox-vector-tile."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import mapbox_vector_tile
import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import mapping
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from api.app import create_app
from benchmarks.province import SIZES, make_province, write_province
from geo.codes import CODE_LENGTH, Level
from geo.zoom_bands import BANDS, MIN_ZOOM
from services.imports import import_units
from store import tiles
from tests import factories as f
from tests.api.test_plan_editor import CUT_001, open_plan
from tests.conftest import DB_PREFIX, act_as_admin, fresh_database

# More jitter than the default keeps many vertices on every outline above the grid: the streets,
# counties and cities are rings of lattice nodes, which a simplification thins.
SHAPE = replace(SIZES["tiny"], grids=3)
SIMPLIFIED_LEVELS = ("city", "county", "street", "community", "grid")


@pytest.fixture(scope="module")
def province(settings, tmp_path_factory) -> Iterator[dict]:
    """A committed database holding the tiny province, imported as a user would (simplified on import)."""
    url = fresh_database(settings, f"{DB_PREFIX}_tiles")
    engine = create_engine(url)
    frame = make_province(SHAPE, seed=5)
    path = write_province(frame, tmp_path_factory.mktemp("tiles") / "province.gpkg")
    with Session(engine) as session, session.begin():
        import_units(session, path, valid_from=datetime(2024, 1, 1, tzinfo=UTC), settings=settings)
    app = create_app(settings.model_copy(update={"database_url": url}), engine=engine)
    with TestClient(app, base_url="https://testserver", headers=act_as_admin(app)) as client:
        yield {"client": client, "engine": engine, "frame": frame}
    engine.dispose()


def tiles_over(frame, z: int) -> list[tuple[int, int, int]]:
    minx, miny, maxx, maxy = frame.total_bounds
    x0, y0 = tiles.tile_of(minx, maxy, z)
    x1, y1 = tiles.tile_of(maxx, miny, z)
    return [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def get_tile(client: TestClient, z: int, x: int, y: int, **params: str):
    answer = client.get(f"/map/tiles/{z}/{x}/{y}.pbf", params=params)
    assert answer.status_code == 200, answer.text
    return answer


def polygons(layer: dict, skip_special: bool = True) -> dict[str, shapely.Geometry]:
    """The layer's features as shapely polygons in tile units, by code."""
    out = {}
    for feature in layer["features"]:
        if skip_special and feature["properties"].get("kind") == "special":
            continue  # special grids overlay the base grids: not part of their coverage
        out[feature["properties"]["code"]] = shapely.geometry.shape(feature["geometry"])
    return out


def shares_edges(geoms: list[shapely.Geometry]) -> bool:
    """Neighbours meet along identical vertices, with no overlap and no sliver between them."""
    if not shapely.coverage_is_valid(np.array(geoms, dtype=object)):
        return False
    whole = shapely.union_all(geoms)
    overlap = sum(g.area for g in geoms) - whole.area
    holes = sum(len(p.interiors) for p in getattr(whole, "geoms", [whole]))
    return abs(overlap) <= 1e-9 * whole.area and holes == 0


def started_elsewhere(polygon: shapely.Polygon, k: int) -> shapely.Polygon:
    """The same polygon with its ring starting at its k-th vertex (as digitised data may)."""
    ring = np.asarray(polygon.exterior.coords)[:-1]
    k %= len(ring)
    return shapely.Polygon(np.vstack([ring[k:], ring[:k]]))


def test_every_band_holds_each_current_unit_of_its_levels_once(province):
    with Session(province["engine"]) as session:
        made, now = session.execute(
            text("SELECT (SELECT generation FROM unit_simplified_state), (SELECT n FROM unit_change_count)")
        ).one()
        assert made == now  # the import brought the table up to its own generation
        for band in BANDS:
            stored = session.execute(
                text("SELECT level, count(*) FROM unit_simplified WHERE band = :b GROUP BY level"),
                {"b": band.number},
            ).all()
            expected = {
                str(level): int((province["frame"]["code"].str.len() == CODE_LENGTH[level]).sum())
                for level in band.levels()
            }
            assert dict(stored) == expected


@pytest.mark.parametrize("z", [7, 8, 9, 11, 12])
def test_a_simplified_tile_keeps_shared_edges_shared_at_every_band(province, z):
    client = province["client"]
    compared = 0
    for t in tiles_over(province["frame"], z):
        answer = get_tile(client, *t)
        assert answer.headers["x-tile-source"] in ("simplified", "cache")
        decoded = mapbox_vector_tile.decode(answer.content)
        for level in SIMPLIFIED_LEVELS:
            if level in decoded and len(decoded[level]["features"]) > 1:
                geoms = list(polygons(decoded[level]).values())
                assert shares_edges(geoms), (t, level)
                compared += 1
    assert compared >= 2


def test_the_edge_check_catches_outlines_simplified_one_by_one(province):
    """The check above can fail: the same counties simplified each on its own no longer share edges
    (each polygon's simplification starts from its own ring's first vertex), as a coverage they do."""
    frame = province["frame"]
    counties = frame[frame["code"].str.len() == 6].to_crs(3857).geometry.to_numpy()
    counties = [started_elsewhere(p, 3 + 7 * i) for i, p in enumerate(counties)]
    assert shares_edges(counties)
    tolerances = (100, 200, 300, 600)
    alone = [shapely.simplify(counties, t, preserve_topology=True) for t in tolerances]
    assert not all(shares_edges(list(a)) for a in alone)
    together = [shapely.coverage_simplify(counties, t) for t in tolerances]
    assert all(shares_edges(list(c)) for c in together)


@pytest.mark.parametrize("z", [5, 7, 8, 9, 12])
def test_no_unit_vanishes_where_its_level_is_drawn(province, z):
    client, frame = province["client"], province["frame"]
    seen: dict[str, set[str]] = {}
    for t in tiles_over(frame, z):
        decoded = mapbox_vector_tile.decode(get_tile(client, *t).content)
        for level, layer in decoded.items():
            seen.setdefault(level, set()).update(polygons(layer, skip_special=False))
    for level in Level:
        codes = set(frame["code"][frame["code"].str.len() == CODE_LENGTH[level]])
        if z >= MIN_ZOOM[level]:
            assert seen.get(str(level), set()) == codes, (z, level)
        else:
            assert str(level) not in seen, (z, level)  # not readable at this zoom: not sent


def test_a_tile_at_province_zoom_holds_only_the_regions_and_is_small(province):
    client, frame = province["client"], province["frame"]
    [tile] = tiles_over(frame, 5)
    answer = get_tile(client, *tile)
    decoded = mapbox_vector_tile.decode(answer.content)
    assert set(decoded) == {"province", "city", "county"}
    assert len(gzip.compress(answer.content)) <= 150 * 1024
    # The page asks for it as a 512 px tile of the zoom above: the same tile (from the cache).
    again = get_tile(client, 6, tile[1], tile[2], size="512")
    assert again.content == answer.content and again.headers["x-tile-source"] == "cache"


def test_a_publish_invalidates_the_cached_tile_and_the_simplified_outlines(client, session, county):
    z = 12
    x, y = tiles.tile_of(f.X0 + 0.006, f.Y0 + f.SIZE * 0.75, z)
    first = get_tile(client, z, x, y)
    assert first.headers["x-tile-source"] == "simplified"
    again = get_tile(client, z, x, y)
    assert again.headers["x-tile-source"] == "cache" and again.content == first.content
    plan = open_plan(client)
    edit = {"operation": "split", "code": f.grid_code(1), "geometry": mapping(CUT_001)}
    assert client.post(f"/plans/{plan}/edits", json=edit).status_code == 201
    assert client.post(f"/plans/{plan}/publish").status_code == 200
    after = get_tile(client, z, x, y)
    assert after.headers["x-tile-source"] == "simplified" and after.content != first.content
    grids = {g["properties"]["code"] for g in mapbox_vector_tile.decode(after.content)["grid"]["features"]}
    assert f.grid_code(5) in grids  # the new half of the split grid is drawn
    versions = session.execute(
        text(
            "SELECT count(*) FROM unit_simplified s JOIN unit_versions v ON v.id = s.source_id "
            "WHERE v.valid_to IS NOT NULL"
        )
    ).scalar_one()
    assert versions == 0  # no simplified outline of a replaced version is left
