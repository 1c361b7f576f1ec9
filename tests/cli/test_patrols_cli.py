"""`gridmap expire-patrols`: tracks past the retention setting are deleted, recent ones kept."""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from geo.patrols import CleanTrack, TrackPoint
from store import patrols as store
from tests import factories as f
from tests.cli.command import gridmap
from tests.conftest import DB_PREFIX, TEST_SECRET, fresh_database


@pytest.fixture(scope="module")
def patrol_env(settings) -> dict[str, str]:
    """Environment for `gridmap` pointing at an empty database of its own."""
    return {
        **os.environ,
        "GRIDMAP_DATABASE_URL": fresh_database(settings, f"{DB_PREFIX}_patrols_cli"),
        "GRIDMAP_SECRET_KEY": TEST_SECRET,
    }


def add_patrol(session: Session, ended: datetime) -> int:
    points = [
        TrackPoint(ended - timedelta(minutes=5), f.X0 + 0.01, f.Y0 + 0.03),
        TrackPoint(ended, f.X0 + 0.01, f.Y0 + 0.031),
    ]
    row, _ = store.save(
        session, store.NewPatrol("walker", f.grid_code(1), CleanTrack(points, Counter()), 111.0)
    )
    return row.id


def test_expire_patrols_deletes_tracks_past_retention(patrol_env, tmp_path):
    county = f.write_geojson(tmp_path / "county.geojson", f.hierarchy())
    gridmap(patrol_env, "import", str(county), "--crs", "EPSG:4490")
    engine = create_engine(patrol_env["GRIDMAP_DATABASE_URL"])
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        old, recent = (
            add_patrol(session, now - timedelta(days=31)),
            add_patrol(session, now - timedelta(days=29)),
        )
    done = gridmap({**patrol_env, "GRIDMAP_PATROL_RETENTION_DAYS": "30"}, "expire-patrols")
    assert "deleted 1 patrol track(s) older than 30 days" in done.stderr
    with engine.connect() as conn:
        left = conn.execute(text("SELECT id FROM patrols")).scalars().all()
    engine.dispose()
    assert left == [recent] and old not in left
