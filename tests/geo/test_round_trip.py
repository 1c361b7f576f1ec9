"""What the service writes it reads back unchanged; what a file says about its CRS is believed or refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import shape

from geo import crs
from geo.importer import ImportRejected
from services.imports import import_units
from services.units import export_units
from tests import factories as f
from tests.conftest import act_as_admin

T0 = datetime(2024, 1, 1, tzinfo=UTC)
T1 = datetime(2025, 6, 1, tzinfo=UTC)
# Off the 7-decimal grid of GeoJSON answers, so an export really rounds what it writes.
NUDGE = 3.14159265e-8


def awkward_hierarchy() -> list[dict]:
    """The test county with vertices off the GeoJSON grid, clockwise rings and free attributes."""
    features = []
    for feature in f.hierarchy():
        geometry = shapely.transform(shape(feature["geometry"]), lambda xy: xy + NUDGE)
        geometry = shapely.orient_polygons(geometry, exterior_cw=True)  # the wrong way for RFC 7946
        properties = {**feature["properties"], "source_id": f"SRC-{feature['properties']['code']}"}
        features.append({**feature, "geometry": shapely.geometry.mapping(geometry), "properties": properties})
    return features


def do_import(session, settings, path, crs_name=None, valid_from=T0, **kw):
    return import_units(session, path, crs_name, valid_from=valid_from, settings=settings, **kw)


def features_by_code(path) -> dict[str, tuple[dict, shapely.Geometry]]:
    frame = gpd.read_file(path)
    rows = frame.drop(columns="geometry").to_dict("records")
    return {r["code"]: (r, g) for r, g in zip(rows, frame.geometry, strict=True)}


@pytest.mark.parametrize("fmt", ["geojson", "gpkg"])
def test_export_import_export_is_the_identity(session, settings, tmp_path, fmt):
    do_import(session, settings, f.write_geojson(tmp_path / "src.geojson", awkward_hierarchy()))
    first = tmp_path / f"first.{fmt}"
    assert export_units(session, "grid", fmt, first) == 4

    again = do_import(session, settings, first, valid_from=T1)  # no --crs: the export declares it
    assert again.summary.created == [] and again.summary.versioned == []
    assert sorted(again.summary.unchanged) == [f.grid_code(i) for i in range(1, 5)]

    second = tmp_path / f"second.{fmt}"
    export_units(session, "grid", fmt, second)
    before, after = features_by_code(first), features_by_code(second)
    assert before.keys() == after.keys()
    for code, (properties, geometry) in before.items():
        assert properties == after[code][0]
        assert properties["source_id"] == f"SRC-{code}"  # free attributes are exported
        assert shapely.equals_exact(geometry, after[code][1], tolerance=0)


def test_the_apis_export_reimports_without_crs_and_changes_nothing(client, session, settings, tmp_path):
    do_import(session, settings, f.write_geojson(tmp_path / "src.geojson", awkward_hierarchy()))
    answer = client.get("/export?level=grid", headers=act_as_admin(client.app))
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/geo+json"
    path = tmp_path / "grid.geojson"
    path.write_bytes(answer.content)
    again = do_import(session, settings, path, valid_from=T1)
    assert len(again.summary.unchanged) == 4 and again.summary.versioned == []
    assert gpd.read_file(path).crs.to_epsg() == 4490  # GDAL reads the declaration too


def test_every_polygon_written_winds_counter_clockwise(client, session, settings, tmp_path):
    do_import(session, settings, f.write_geojson(tmp_path / "src.geojson", awkward_hierarchy()))
    headers = act_as_admin(client.app)
    for url in ("/grids?level=grid", "/export?level=community", f"/grids/{f.grid_code(1)}"):
        body = client.get(url, headers=headers).json()
        for feature in body.get("features", [body]):
            for polygon in shape(feature["geometry"]).geoms:
                assert shapely.is_ccw(polygon.exterior), url


def test_an_unrecognised_crs_is_refused_with_its_name(session, settings, tmp_path):
    path = f.write_geojson(tmp_path / "odd.geojson", f.hierarchy())
    document = json.loads(path.read_text())
    document["crs"]["properties"]["name"] = "Beijing-Local-1954-ish"
    path.write_text(json.dumps(document))
    with pytest.raises(ImportRejected) as caught:
        do_import(session, settings, path)
    message = "\n".join(caught.value.report.errors)
    assert "'Beijing-Local-1954-ish', which is not recognised" in message and "--crs" in message
    # Confirmed by the user, it is read in the system they name.
    assert len(do_import(session, settings, path, "cgcs2000", override_crs=True).summary.created) == 7


def test_a_crs_name_we_know_is_believed(session, settings, tmp_path):
    gcj = [
        {**g, "geometry": shapely.geometry.mapping(shapely.transform(shape(g["geometry"]), _to_gcj02))}
        for g in f.hierarchy()
    ]
    path = f.write_geojson(tmp_path / "amap.geojson", gcj)
    document = json.loads(path.read_text())
    document["crs"]["properties"]["name"] = "GCJ-02"  # GDAL would read this as WGS84, 500 m off
    path.write_text(json.dumps(document))
    assert do_import(session, settings, path).source_crs == crs.GCJ02


def _to_gcj02(xy):
    x, y = crs.wgs84_to_gcj02(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


def test_crs_flag_against_a_declared_crs_needs_confirming(session, settings, tmp_path):
    path = f.write_geojson(tmp_path / "declared.geojson", f.hierarchy(), crs="EPSG:4326")
    with pytest.raises(ImportRejected) as caught:
        do_import(session, settings, path, "gcj02")
    message = "\n".join(caught.value.report.errors)
    assert "declares wgs84 but --crs says gcj02" in message and "--override-crs" in message
    assert do_import(session, settings, path, "gcj02", override_crs=True).source_crs == crs.GCJ02


@pytest.mark.parametrize(
    ("lon", "lat", "hint"),
    [
        (114.9, 95.0, "latitude 95 is out of range"),
        (195.0, 33.4, "longitude 195 is out of range"),
        (33.4, 114.9, "look swapped"),
        (500_000.0, 3_700_000.0, "projected metres"),
        (-74.0, 40.7, "elsewhere on Earth"),
    ],
)
def test_out_of_range_coordinates_get_the_right_hint(lon, lat, hint):
    with pytest.raises(crs.CoordinateError, match=hint):
        crs.check_plausible([lon], [lat])
