"""/locate's copy as a file: mapped, it answers like PostGIS; a corrupt, cut or stale file is refused
and rebuilt; a build leaves no temporary file behind."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from store import locate_copy, locate_file
from store.locate_cache import LocateCache, Snapshot, copy_path, open_if_current
from tests.places import unit_bounds
from tests.store.test_locate_cache import TOLERANCE_M, check_against_sql


@pytest.fixture
def built(demo_engine, tmp_path, monkeypatch) -> tuple[Path, dict]:
    """The demo county's copy written by the child's code, and the state it was built from."""
    monkeypatch.setattr(locate_copy, "CHUNK_ROWS", 700)  # several chunks, cut inside both layers
    path = tmp_path / "grids.locate"
    meta = locate_copy.build(demo_engine.url.render_as_string(hide_password=False), path)
    return path, meta


def demo_points(session: Session, n: int) -> list[tuple[float, float]]:
    """Points across the demo county and inside its special grids and micro-grids."""
    bounds = unit_bounds(session, "411681")
    rng = np.random.default_rng(4)
    points = list(
        zip(rng.uniform(bounds[0], bounds[2], n), rng.uniform(bounds[1], bounds[3], n), strict=True)
    )
    points += session.execute(
        text("""SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(v.geom) p
                FROM unit_versions v JOIN units u USING (code)
                WHERE (u.level = 'micro_grid' OR v.kind = 'special') AND v.valid_to IS NULL
                ORDER BY v.code LIMIT 300) q""")
    ).all()  # fmt: skip
    return [(float(x), float(y)) for x, y in points]


def test_the_mapped_copy_answers_like_postgis_on_the_demo_county(built, demo_session):
    path, meta = built
    assert meta == locate_copy.whence(demo_session)
    snapshot = open_if_current(path, meta, TOLERANCE_M)
    assert snapshot is not None
    # Its arrays are views of the file's read-only mapping (shared by the page cache), not copies.
    assert not snapshot.grids.coords.flags.writeable and not snapshot.grids.coords.flags.owndata
    seen = check_against_sql(demo_session, snapshot, demo_points(demo_session, 1500))
    assert seen["memory"] > 1000


def test_a_corrupt_cut_or_stale_file_is_not_used(built):
    path, meta = built
    good = path.read_bytes()
    assert open_if_current(path, meta, TOLERANCE_M) is not None
    for stale in ({**meta, "changes": meta["changes"] + 1}, {**meta, "oid": meta["oid"] + 1}):
        assert open_if_current(path, stale, TOLERANCE_M) is None  # another state, another database
    altered = bytearray(good)
    altered[len(good) // 2] ^= 0x01  # one bit of the arrays
    path.write_bytes(bytes(altered))
    assert open_if_current(path, meta, TOLERANCE_M) is None
    with pytest.raises(locate_file.BadFile, match="digest"):
        locate_file.open_mapped(path)
    path.write_bytes(good[:-100])  # cut short
    assert open_if_current(path, meta, TOLERANCE_M) is None
    for garbage in (b"", b"not a copy", good[: len(locate_file.MAGIC) + 12]):
        path.write_bytes(garbage)
        assert open_if_current(path, meta, TOLERANCE_M) is None
    path.unlink()
    assert open_if_current(path, meta, TOLERANCE_M) is None


def test_the_cache_replaces_a_corrupt_file_cleans_up_and_does_not_rebuild_a_current_one(
    demo_engine, tmp_path
):
    cache = LocateCache(demo_engine, tolerance_m=TOLERANCE_M, folder=tmp_path)
    assert cache.path == copy_path(tmp_path, demo_engine) and cache.path.parent == tmp_path
    with Session(demo_engine) as session:
        now = locate_copy.whence(session)
    # A file that claims the current state but is altered, and what a stopped build left.
    locate_file.write(cache.path, {"junk": np.arange(1000)}, now)
    data = bytearray(cache.path.read_bytes())
    data[-1] ^= 0xFF
    cache.path.write_bytes(bytes(data))
    leftover = cache.path.with_name(f"{cache.path.name}.12345.tmp")
    leftover.write_bytes(b"half a copy")

    async def scenario() -> tuple[int, int]:
        task = asyncio.create_task(cache.run())
        await until(lambda: cache.snapshot is not None)
        first = os.stat(cache.path).st_ino
        cache.changed()  # heard again (a reconnection, say) with nothing changed: the same file
        assert cache.snapshot is None
        await until(lambda: cache.snapshot is not None)
        task.cancel()
        return first, os.stat(cache.path).st_ino

    first, second = asyncio.run(scenario())
    assert first == second  # mapped again, not rebuilt
    assert cache.meta == now
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        cache.path.name,
        cache.path.with_suffix(".lock").name,
    ]
    with Session(demo_engine) as session:
        snapshot = Snapshot.load(session, tolerance_m=TOLERANCE_M)
        points = demo_points(session, 300)
    assert [cache.locate(*p) for p in points] == [snapshot.locate(*p) for p in points]


async def until(condition, timeout_s: float = 60.0) -> None:
    """Wait for what the cache does in the background (not a timing assertion)."""
    for _ in range(int(timeout_s / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the cache did not get there")


def test_arrays_round_trip_empty_ones_too(tmp_path):
    # A county without micro-grids has an empty layer: its arrays are of size 0.
    arrays = {
        "numbers": np.arange(5),
        "coords": np.empty((0, 2)),
        "codes": np.array([b"411681", b"41"], dtype="S"),
        "last": np.empty(0, dtype=np.int32),
    }
    locate_file.write(tmp_path / "x.locate", arrays, {"changes": 3})
    meta, mapped = locate_file.open_mapped(tmp_path / "x.locate")
    assert meta == {"changes": 3}
    for name, a in arrays.items():
        assert mapped[name].dtype == a.dtype and mapped[name].shape == a.shape
        assert np.array_equal(mapped[name], a)
