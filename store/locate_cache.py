"""A copy of the current grids for single-point lookups (/locate without `at`), shared by the
server's worker processes and rebuilt without a pause in answering.

`Snapshot` answers from flat arrays (store.locate_copy, geo.flat_grids): a point that some grid
covers gets exactly the answer of store.locate.locate (the same `assigned`); a point no grid
covers gets None, and the caller asks PostGIS, whose spheroid distances are the answer for
snapped and unassigned points.

`LocateCache` keeps a snapshot fresh for the life of a server process. The arrays live in one
file per database under the state folder (`<home>/locate/`), mapped read-only by every worker
process: the page cache holds them once per machine. On the `unit_changes` notification (a
trigger on unit_versions sends it at commit) each worker drops its snapshot at once (PostGIS
answers meanwhile); one of them, holding the folder's lock, runs `python -m store.locate_copy`
as a child process, which writes the new file and renames it into place; every worker maps it
when its change count is the database's. So no answer waits on a build: the build runs in
another process, and mapping a file (checking its digest lets go of the interpreter) is short.
A file of another database, another state of the grids, another format, cut short or altered is
never answered from. Until the first copy is mapped, after a change and while the listening
connection is lost, there is no snapshot.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from geo.assignment import Assignment, GridRef, UnitRef
from geo.codes import ancestor_codes
from geo.flat_grids import ARRAYS, FlatPolygons
from store import locate_copy, locate_file
from store.locate import assigned
from store.notifications import RETRY_S, listen

log = logging.getLogger("gridmap.locate_cache")

CHANNEL = "unit_changes"  # sent by the trigger of migration 0003_unit_changes
POLL_S = 0.2  # how often a worker that is not building looks for the new file
BUILD_TIMEOUT_S = 600.0  # a build taking longer is stopped (and tried again)
_ROOT = Path(__file__).resolve().parents[1]  # where `python -m store.locate_copy` is found


class Snapshot:
    """The current grids, micro-grids and unit names, answering covered points from flat arrays."""

    def __init__(self, arrays: dict[str, np.ndarray], tolerance_m: float) -> None:
        """Answer from `arrays` (store.locate_copy.load_arrays; kept as they are, a mapping stays shared)."""
        self.layers = {
            layer: FlatPolygons({k: arrays[f"{layer}.{k}"] for k in ARRAYS}) for layer in locate_copy.LAYERS
        }
        self._unit = {layer: arrays[f"{layer}.unit"] for layer in locate_copy.LAYERS}
        self._kind = {layer: arrays[f"{layer}.kind"] for layer in locate_copy.LAYERS}
        self._version = {layer: arrays[f"{layer}.version"] for layer in locate_copy.LAYERS}
        self._codes, self._levels = arrays["units.codes"], arrays["units.level"]
        self._names, self._name_at = arrays["units.names"], arrays["units.name_at"]
        self._level_names = [x.decode() for x in arrays["levels"].tolist()]
        self._kind_names = [x.decode() or None for x in arrays["kinds"].tolist()]
        self.tolerance_m = tolerance_m

    @classmethod
    def load(cls, session: Session, *, tolerance_m: float) -> Snapshot:
        """The current state of the store, as the session sees it (in this process's memory)."""
        return cls(locate_copy.load_arrays(session), tolerance_m)

    @property
    def grids(self) -> FlatPolygons:
        """The grids' polygons (len() is their number)."""
        return self.layers["grid"]

    def locate(self, lon: float, lat: float) -> Assignment | None:
        """The answer for a storage lon/lat some current grid covers; None when none does."""
        hits = self.layers["grid"].covering(lon, lat)
        if not hits:
            return None
        micro = self.layers["micro"].covering(lon, lat)
        return assigned(
            [self._ref("grid", i) for i in hits],
            [self._ref("micro", i) for i in micro],
            self._chain,
            self.tolerance_m,
        )

    def _ref(self, layer: str, i: int) -> GridRef:
        unit = int(self._unit[layer][i])
        kind = self._kind_names[int(self._kind[layer][i])]
        return GridRef(self._codes[unit].decode(), self._name(unit), kind, int(self._version[layer][i]))

    def _name(self, unit: int) -> str:
        return self._names[self._name_at[unit] : self._name_at[unit + 1]].tobytes().decode()

    def _unit_ref(self, code: str) -> UnitRef | None:
        key = code.encode()
        at = int(np.searchsorted(self._codes, key))
        if at == len(self._codes) or self._codes[at] != key:
            return None
        return UnitRef(code, self._name(at), self._level_names[int(self._levels[at])])

    def _chain(self, grid_code: str) -> list[UnitRef]:
        """The grid's parents that exist, county first (by code, as store.locate names them)."""
        return [u for u in map(self._unit_ref, ancestor_codes(grid_code)) if u is not None]


def copy_path(folder: Path, engine: Engine) -> Path:
    """The file of the engine's database in `folder` (named after its URL, without the password)."""
    where = engine.url.render_as_string(hide_password=True)
    return folder / f"grids-{hashlib.blake2b(where.encode(), digest_size=8).hexdigest()}.locate"


def open_if_current(path: Path, now: dict[str, Any], tolerance_m: float) -> Snapshot | None:
    """The snapshot of the file at `path` if it was built from the database state `now`; else None."""
    if locate_file.read_meta(path) != now:  # absent, another database or state (cheap: the header)
        return None
    try:
        meta, arrays = locate_file.open_mapped(path)
    except (OSError, locate_file.BadFile) as e:
        log.warning("locate copy %s not used: %s", path, e)
        return None
    return Snapshot(arrays, tolerance_m) if meta == now else None


class LocateCache:
    """A snapshot of the current grids kept fresh by LISTEN/NOTIFY; `snapshot` is None when unsure."""

    def __init__(
        self,
        engine: Engine,
        *,
        tolerance_m: float,
        folder: Path,
        on_snapshot: Callable[[], None] = lambda: None,
    ) -> None:
        """Nothing happens until `run` is awaited; the copy's file lives in `folder`; `on_snapshot`
        is called before the first snapshot is used (a server spares what it loaded the garbage
        collector's walks)."""
        self.engine, self.tolerance_m, self.on_snapshot = engine, tolerance_m, on_snapshot
        self.path = copy_path(folder, engine)
        self.snapshot: Snapshot | None = None
        self.meta: dict[str, Any] | None = None  # what the snapshot was built from
        self._generation = 0  # counts changes: a copy looked for before the last one is stale
        self._changed = asyncio.Event()

    def locate(self, lon: float, lat: float) -> Assignment | None:
        """The in-memory answer for a current lookup, or None: ask PostGIS."""
        snapshot = self.snapshot
        return snapshot.locate(lon, lat) if snapshot is not None else None

    def changed(self) -> None:
        """Units changed: stop answering from memory and find (or build) the new copy."""
        self._forget()
        self._changed.set()

    def _forget(self) -> None:
        self._generation += 1
        self.snapshot = None

    async def run(self) -> None:
        """Listen for changes and swap in the new copy after each, until cancelled."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        listener = asyncio.create_task(listen(self.engine, CHANNEL, self.changed, lost=self._forget))
        try:
            while True:
                await self._changed.wait()
                self._changed.clear()
                generation = self._generation
                try:
                    found = await self._current_copy(generation)
                except Exception as e:  # the database went away, or the build failed: try again later
                    log.warning("locate copy not ready (%s); retrying", e)
                    await asyncio.sleep(RETRY_S)
                    self._changed.set()
                    continue
                if found is not None and generation == self._generation:  # no change arrived meanwhile
                    if self.meta is None:
                        # Once: the arrays are not objects the collector walks, so a later copy
                        # leaves nothing to collect, and a full collection on the event loop
                        # (~0.1-0.5 s for a served process's ~200,000 objects) would be a pause.
                        self.on_snapshot()
                    self.meta, self.snapshot = found
        finally:
            listener.cancel()

    async def _current_copy(self, generation: int) -> tuple[dict[str, Any], Snapshot] | None:
        """Map the copy of the database's current state, building it if no other process is;
        None when another change arrived meanwhile (the next pass looks again)."""
        while generation == self._generation:
            now = await asyncio.to_thread(self._whence)
            snapshot = await asyncio.to_thread(open_if_current, self.path, now, self.tolerance_m)
            if snapshot is not None:
                return now, snapshot
            if not await self._build_if_free(now):
                await asyncio.sleep(POLL_S)  # another process builds: look again shortly
        return None

    def _whence(self) -> dict[str, Any]:
        with Session(self.engine) as session:
            return locate_copy.whence(session)

    async def _build_if_free(self, now: dict[str, Any]) -> bool:
        """Build the copy in a child process unless another process holds the lock; True if built."""
        with open(self.path.with_suffix(".lock"), "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            if await asyncio.to_thread(open_if_current, self.path, now, self.tolerance_m):
                return True  # another process finished it while we looked
            self._clean_up()
            await self._run_builder()
            return True  # the lock goes with the file's closing

    def _clean_up(self) -> None:
        """Remove what a build that was stopped left (its temporary file)."""
        for left in self.path.parent.glob(f"{self.path.name}.*.tmp"):
            left.unlink(missing_ok=True)

    async def _run_builder(self) -> None:
        """`python -m store.locate_copy` on this database; raises if it fails."""
        url = self.engine.url.render_as_string(hide_password=False)
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "store.locate_copy", str(self.path),
            cwd=_ROOT, env={**os.environ, locate_copy.URL_VARIABLE: url},
            stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            code = await asyncio.wait_for(child.wait(), BUILD_TIMEOUT_S)
        finally:
            if child.returncode is None:  # cancelled (the server stops) or too slow
                child.kill()
                await child.wait()
        if code != 0:
            raise RuntimeError(f"building the locate copy failed (exit status {code})")
