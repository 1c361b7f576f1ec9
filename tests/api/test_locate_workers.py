"""A server of two worker processes: one copy of the grids, mapped by both, and both swap to the
new copy after a redraw committed elsewhere (NOTIFY reaches every process)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import box
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from api.app import create_app
from benchmarks.bench_postgis import ROOT, free_port, wait_until_up
from geo.codes import Level
from geo.settings import Settings
from geo.validation import UnitFeature
from store import locate_file
from store.units import write_units
from tests import factories as f
from tests.api.test_locate_cache import HALF, IN_GAP, commit_county, until
from tests.conftest import DB_PREFIX, TEST_SECRET

BUILD_WAIT_S = 180  # a bound on waiting for a build (a busy machine starves a niced child), not a timing
IN_003 = (f.X0 + 0.002, f.Y0 + 0.008)  # grid 003 before and after its redraw


def workers(server: subprocess.Popen) -> list[int]:
    """The pids of uvicorn's worker processes (its children that run the app)."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    return [int(p) for p in children if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]


def mapped(pid: int, folder: Path) -> set[str]:
    """The inodes of the files in `folder` that process `pid` maps ("(deleted)" marks a replaced one)."""
    found = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith(str(folder)):
            found.add(fields[4] + (" (deleted)" if fields[5].endswith("(deleted)") else ""))
    return found


def test_both_workers_map_one_copy_and_swap_to_the_rebuilt_one_after_a_redraw(settings, tmp_path):
    url = commit_county(settings, f"{DB_PREFIX}_locate_workers")
    folder = tmp_path / "home" / "locate"
    port = free_port()
    env = {
        **os.environ,
        "GRIDMAP_DATABASE_URL": url,
        "GRIDMAP_HOME": str(tmp_path / "home"),
        "GRIDMAP_SECRET_KEY": TEST_SECRET,
        "GRIDMAP_BACKGROUND_JOBS": "false",
    }
    command = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--workers", "2"]
    server = subprocess.Popen([*command, "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=env)
    plain = create_engine(url)
    sql = TestClient(create_app(Settings(database_url=url, secret_key=TEST_SECRET), engine=plain))
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, server)
        until(lambda: len(workers(server)) == 2, "two workers")
        pids = workers(server)

        def every_worker_maps_the_current_file() -> bool:
            files = list(folder.glob("*.locate"))  # one file per database
            current = {str(os.stat(files[0]).st_ino)} if files else set()
            return bool(current) and all(mapped(pid, folder) == current for pid in pids)

        until(every_worker_maps_the_current_file, "both workers mapping the copy", BUILD_WAIT_S)
        [path] = folder.glob("*.locate")
        before = os.stat(path).st_ino
        changes = locate_file.read_meta(path)["changes"]
        check_answers(base, sql, version=1)

        # Grid 003 redrawn over the gap, committed by another process.
        grown = shapely.MultiPolygon([box(f.X0, f.Y0, f.X0 + f.SIZE, f.Y0 + HALF)])
        feature = UnitFeature(
            code=f.grid_code(3), name="单元3", level=Level.GRID, geometry=grown, kind="urban"
        )
        with Session(plain) as session, session.begin():
            write_units(session, [feature], valid_from=datetime(2025, 1, 1, tzinfo=UTC))
        until(lambda: os.stat(path).st_ino != before and every_worker_maps_the_current_file(),
              "both workers mapping the rebuilt copy", BUILD_WAIT_S)  # fmt: skip
        assert locate_file.read_meta(path)["changes"] > changes
        assert all(str(before) not in " ".join(mapped(pid, folder)) for pid in pids)  # the old one let go
        check_answers(base, sql, version=2)
        # One copy, renamed into place: no temporary file left.
        assert sorted(p.name for p in folder.iterdir()) == [path.name, path.with_suffix(".lock").name]
    finally:
        server.terminate()
        server.wait(20)
        sql.close()
        plain.dispose()


def check_answers(base: str, sql: TestClient, *, version: int) -> None:
    """Answers on fresh connections (either worker may take each) are the SQL path's."""
    for point in [IN_003, IN_GAP] * 10:
        params = {"lon": point[0], "lat": point[1], "crs": "cgcs2000"}
        body = httpx.get(base + "/locate", params=params, timeout=10).json()
        assert body == sql.get("/locate", params=params).json()
    body = httpx.get(base + "/locate", params={"lon": IN_003[0], "lat": IN_003[1], "crs": "cgcs2000"}).json()
    assert (body["grid"]["code"], body["grid"]["version"]) == (f.grid_code(3), version)
