"""The grid index of a batch (`gridmap assign`): loaded from the cache when the grids are unchanged.

Building the index from the stored polygons takes seconds at 100,000 grids and more than the
assignment of a million points; the grids change rarely (an import, a publish). So the built
index is saved under GRIDMAP_HOME/cache/grid-index/, named by the database, the boundary
generation (store.boundary_generation: every write of unit versions moves it on), the snap
tolerance and the code that built it; a later run on the same grids loads it in a fraction of a
second. Older entries of the same database are removed when a new one is saved.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from geo import grid_index_file
from geo.lookup import GridIndex
from geo.settings import Settings
from store.boundary_generation import database_identity, generation


@dataclass(frozen=True)
class LoadedIndex:
    """The index, how long getting it took, and whether it came from the cache."""

    index: GridIndex
    seconds: float
    cached: bool


def _code_version() -> str:
    """A digest of the modules whose code shapes the saved index (a new version rebuilds it)."""
    import geo.assignment
    import geo.grid_raster
    import geo.lookup
    import geo.nearest

    digest = hashlib.sha256(str(grid_index_file.FORMAT).encode())
    for module in (geo.assignment, geo.grid_raster, geo.lookup, geo.nearest, grid_index_file):
        digest.update(Path(module.__file__ or "").read_bytes())
    return digest.hexdigest()[:16]


def _digest(*parts: object) -> str:
    """A short name for the parts."""
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:16]


def cache_folder(settings: Settings) -> Path:
    """Where saved grid indexes live."""
    return settings.home / "cache" / "grid-index"


def batch_index(
    session: Session, settings: Settings, *, say: Callable[[str], None] | None = None
) -> LoadedIndex:
    """The index of the current grids and micro-grids: the cached one if the grids are unchanged."""
    say = say or (lambda _message: None)
    started = time.perf_counter()
    # The generation first: grids written after it make the entry newer than its name, never older.
    changes = generation(session)
    place, incarnation = database_identity(session)
    database = _digest(place)  # a database re-created at the same place replaces its entries
    name = f"{database}-{changes}-{_digest(incarnation, settings.snap_tolerance_m, _code_version())}"
    folder = cache_folder(settings) / name
    if (folder / "meta.json").exists():
        try:
            index = grid_index_file.load(folder)
            return LoadedIndex(index, time.perf_counter() - started, cached=True)
        except (OSError, ValueError, KeyError) as exc:  # unreadable: build it again
            say(f"  the saved grid index cannot be read ({exc}); building it again")
            shutil.rmtree(folder, ignore_errors=True)
    say("building the grid index ...")
    from store.locate import load_grid_index  # its SQL and row mapping only when the index is built

    index = load_grid_index(session, tolerance_m=settings.snap_tolerance_m)
    try:
        grid_index_file.save(index, folder)
        for old in cache_folder(settings).glob(f"{database}-*"):
            if old.name != name:  # a running batch keeps reading its mapped files after this
                shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:  # a read-only home: the batch still runs, only without the cache
        say(f"  the grid index could not be saved in {folder.parent} ({exc})")
    return LoadedIndex(index, time.perf_counter() - started, cached=False)
