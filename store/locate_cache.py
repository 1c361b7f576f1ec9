"""An in-memory copy of the current grids for single-point lookups (/locate without `at`).

`Snapshot` holds the current grids and micro-grids in STRtrees and the current names of every
unit. It answers a point that some grid covers exactly as store.locate.locate does (the same
`assigned`); a point no grid covers gets None, and the caller asks PostGIS, whose spheroid
distances are the answer for snapped and unassigned points.

`LocateCache` keeps a snapshot fresh for the life of a server process: it LISTENs for the
`unit_changes` notification (a trigger on unit_versions sends it at commit), drops the snapshot at
once (callers then ask PostGIS) and rebuilds it in a thread. Until the first build finishes, after
a change and while the listening connection is lost, there is no snapshot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import shapely
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from geo.assignment import Assignment, GridRef, UnitRef
from geo.codes import Level, ancestor_codes
from store.geometry import from_wkb_array
from store.locate import assigned
from store.notifications import RETRY_S, listen
from store.units import valid_at_sql

log = logging.getLogger("gridmap.locate_cache")

CHANNEL = "unit_changes"  # sent by the trigger of migration 0003_unit_changes


class Snapshot:
    """The current grids, micro-grids and unit names, answering covered points in memory."""

    def __init__(
        self,
        grids: Sequence[GridRef],
        grid_geometries: Sequence[shapely.Geometry],
        micro_grids: Sequence[GridRef],
        micro_geometries: Sequence[shapely.Geometry],
        names: dict[str, UnitRef],
        tolerance_m: float,
    ) -> None:
        """Index the polygons (storage lon/lat) of the grids and micro-grids."""
        self.grids, self.micro_grids = list(grids), list(micro_grids)
        self._grid_tree = shapely.STRtree(list(grid_geometries))
        self._micro_tree = shapely.STRtree(list(micro_geometries))
        shapely.prepare(self._grid_tree.geometries)  # many point tests per polygon
        shapely.prepare(self._micro_tree.geometries)
        self.names = names
        self.tolerance_m = tolerance_m

    @classmethod
    def load(cls, session: Session, *, tolerance_m: float) -> Snapshot:
        """The current state of the store, as the session sees it."""
        rows = session.execute(
            text(
                f"""SELECT v.code, u.level, v.name, v.kind, v.version,
                          CASE WHEN u.level IN ('grid', 'micro_grid') THEN ST_AsBinary(v.geom) END AS wkb
                   FROM unit_versions v JOIN units u USING (code)
                   WHERE {valid_at_sql("v", None)} ORDER BY v.code"""
            )
        ).all()
        grids = [r for r in rows if r.level == Level.GRID]
        micro = [r for r in rows if r.level == Level.MICRO_GRID]
        return cls(
            [GridRef(r.code, r.name, r.kind, r.version) for r in grids],
            from_wkb_array([r.wkb for r in grids]) if grids else [],
            [GridRef(r.code, r.name, r.kind, r.version) for r in micro],
            from_wkb_array([r.wkb for r in micro]) if micro else [],
            {r.code: UnitRef(r.code, r.name, r.level) for r in rows},
            tolerance_m,
        )

    def locate(self, lon: float, lat: float) -> Assignment | None:
        """The answer for a storage lon/lat some current grid covers; None when none does."""
        point = shapely.Point(lon, lat)
        hits = self._grid_tree.query(point, predicate="intersects")
        if not len(hits):
            return None
        micro = self._micro_tree.query(point, predicate="intersects")
        return assigned(
            [self.grids[i] for i in hits],
            [self.micro_grids[i] for i in micro],
            self._chain,
            self.tolerance_m,
        )

    def _chain(self, grid_code: str) -> list[UnitRef]:
        """The grid's parents that exist, county first (by code, as store.locate names them)."""
        return [self.names[c] for c in ancestor_codes(grid_code) if c in self.names]


class LocateCache:
    """A snapshot of the current grids kept fresh by LISTEN/NOTIFY; `snapshot` is None when unsure."""

    def __init__(
        self, engine: Engine, *, tolerance_m: float, on_snapshot: Callable[[], None] = lambda: None
    ) -> None:
        """Nothing happens until `run` is awaited; `on_snapshot` is called before each new snapshot
        is used (a server spares it the garbage collector's walks)."""
        self.engine, self.tolerance_m, self.on_snapshot = engine, tolerance_m, on_snapshot
        self.snapshot: Snapshot | None = None
        self._generation = 0  # counts changes: a build started before the last one is stale
        self._changed = asyncio.Event()

    def locate(self, lon: float, lat: float) -> Assignment | None:
        """The in-memory answer for a current lookup, or None: ask PostGIS."""
        snapshot = self.snapshot
        return snapshot.locate(lon, lat) if snapshot is not None else None

    def changed(self) -> None:
        """Units changed: stop answering from memory and rebuild."""
        self._forget()
        self._changed.set()

    def _forget(self) -> None:
        self._generation += 1
        self.snapshot = None

    async def run(self) -> None:
        """Listen for changes and rebuild after each, until cancelled."""
        listener = asyncio.create_task(listen(self.engine, CHANNEL, self.changed, lost=self._forget))
        try:
            while True:
                await self._changed.wait()
                self._changed.clear()
                generation = self._generation
                try:
                    snapshot = await asyncio.to_thread(self._build)
                except Exception as e:  # the database went away, say: try again later
                    log.warning("locate cache not built (%s); retrying", e)
                    await asyncio.sleep(RETRY_S)
                    self._changed.set()
                    continue
                if generation == self._generation:  # no change arrived while building
                    self.on_snapshot()
                    self.snapshot = snapshot
        finally:
            listener.cancel()

    def _build(self) -> Snapshot:
        with Session(self.engine) as session:
            return Snapshot.load(session, tolerance_m=self.tolerance_m)
