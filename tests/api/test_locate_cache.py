"""/locate served from the in-memory copy: the same JSON as PostGIS, and fresh after a redraw.

These tests commit (the copy is built from what other connections can see), so they use a
database of their own.
"""

from __future__ import annotations

import gc
import time
from datetime import UTC, datetime

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import box
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from api.app import create_app
from geo.codes import Level
from geo.settings import Settings
from geo.validation import UnitFeature
from store.units import write_units
from tests import factories as f
from tests.conftest import DB_PREFIX, TEST_SECRET, county_database

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HALF = f.SIZE / 2
IN_GAP = (f.X0 + 0.03, f.Y0 + 0.01)  # where grid 004 is missing


@pytest.fixture
def committed_url(settings):
    """A database holding the test county (004 left out, a school over 001/003, a micro-grid), committed."""
    return commit_county(settings, f"{DB_PREFIX}_locate_cache")


def commit_county(settings: Settings, name: str) -> str:
    """A new database `name` holding the test county of `committed_url`, committed; its URL."""
    features = [x for x in f.hierarchy() if x["properties"]["code"] != f.grid_code(4)]
    school = box(f.X0 + 0.005, f.Y0 + HALF - 0.003, f.X0 + 0.008, f.Y0 + HALF + 0.003)
    features.append(f.feature(f.grid_code(5), school, kind="special", special_type="school"))
    features.append(f.feature(f.grid_code(3) + "001", box(f.X0, f.Y0, f.X0 + 0.005, f.Y0 + 0.005)))
    return county_database(settings, name, features)


def until(condition, what: str, timeout_s: float = 60.0) -> None:
    """Wait for something the app does in the background (not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.05)


def test_cached_answers_are_the_json_of_the_sql_path_and_follow_a_redraw(committed_url, tmp_path):
    settings = Settings(database_url=committed_url, secret_key=TEST_SECRET, home=tmp_path / "home")
    rng = np.random.default_rng(1)
    n = 600
    xs = rng.uniform(f.X0 - 0.002, f.X0 + f.SIZE + 0.002, n)
    ys = rng.uniform(f.Y0 - 0.002, f.Y0 + f.SIZE + 0.002, n)
    edge = [(f.X0 + HALF, f.Y0 + 0.035), (f.X0 + 0.0065, f.Y0 + HALF + 0.001), (f.X0 + 0.001, f.Y0 + 0.001)]
    points = [*zip(xs.tolist(), ys.tolist(), strict=True), *edge, IN_GAP]
    plain = create_engine(committed_url)
    gc.unfreeze()
    with TestClient(create_app(settings)) as cached, TestClient(create_app(settings, engine=plain)) as sql:
        cache = cached.app.state.locate_cache
        until(lambda: cache.snapshot is not None, "the first build")
        # The garbage collector no longer walks the copy and all loaded before it (a full
        # collection is a pause in serving).
        assert gc.get_freeze_count() > 0
        answered = 0
        for x, y in points:
            params = {"lon": x, "lat": y, "crs": "cgcs2000"}
            answered += cache.locate(x, y) is not None
            assert cached.get("/locate", params=params).json() == sql.get("/locate", params=params).json()
        assert answered > n / 2
        statuses = {sql.get("/locate", params={"lon": x, "lat": y}).json()["status"] for x, y in points}
        assert statuses == {"assigned", "snapped", "unassigned"}

        # Redraw grid 003 over the gap, committed by another connection: the copy is dropped at
        # once (PostGIS answers) and rebuilt.
        grown = shapely.MultiPolygon([box(f.X0, f.Y0, f.X0 + f.SIZE, f.Y0 + HALF)])
        feature = UnitFeature(
            code=f.grid_code(3), name="单元3", level=Level.GRID, geometry=grown, kind="urban"
        )
        with Session(plain) as session, session.begin():
            write_units(session, [feature], valid_from=datetime(2025, 1, 1, tzinfo=UTC))
        until(lambda: cache.locate(*IN_GAP) is not None, "the rebuilt copy")
        params = {"lon": IN_GAP[0], "lat": IN_GAP[1], "crs": "cgcs2000"}
        body = cached.get("/locate", params=params).json()
        assert (body["grid"]["code"], body["grid"]["version"]) == (f.grid_code(3), 2)
        assert body == sql.get("/locate", params=params).json()
        # A dated lookup still sees the old boundary (always PostGIS).
        old = cached.get("/locate", params={**params, "at": "2024-06-01"}).json()
        assert old["status"] != "assigned"
    plain.dispose()
    gc.unfreeze()  # this test process is not a server
