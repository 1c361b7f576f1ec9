"""Vector tiles of a view, cached per process until the boundaries change.

A tile is looked up by the boundary generation (store.boundary_generation: every write of units
moves it on, in the writing transaction) with its address and filters: after an import or a
publish the generation is new, so no cached tile of the old boundaries is ever served again (old
entries age out of the LRU). Tiles are cut from the simplified outlines when those are of the
current generation, else from the stored outlines (store/tiles.py).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from cachetools import LRUCache
from sqlalchemy.orm import Session

from geo.codes import Level
from store import simplified_units, tiles
from store.tiles import FEATURE_BUDGET, MIN_ZOOM, PROPERTIES

# What a tile holds, for the routes that describe tiles (TileJSON, the omission header).
__all__ = ["FEATURE_BUDGET", "MIN_ZOOM", "PROPERTIES", "ServedTile", "TileCache", "view_tile"]

CACHE_BYTES = 64 * 1024 * 1024  # ~1,000 dense tiles, ~10,000 typical ones, per worker process


@dataclass(frozen=True)
class ServedTile:
    """A tile, the boundary generation it shows, and where it came from (cache, simplified, stored)."""

    tile: tiles.Tile
    generation: int
    source: str


class TileCache:
    """An LRU of generated tiles, bounded in bytes, safe across request threads."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self._tiles: LRUCache = LRUCache(maxsize=max_bytes, getsizeof=lambda t: len(t.data) + 256)
        self._lock = threading.Lock()

    def get(self, key: tuple) -> tiles.Tile | None:
        """The tile cached under `key`, if any."""
        with self._lock:
            return self._tiles.get(key)

    def put(self, key: tuple, tile: tiles.Tile) -> None:
        """Keep `tile` under `key` (a tile larger than the whole cache is not kept)."""
        with self._lock:
            if len(tile.data) + 256 <= self._tiles.maxsize:
                self._tiles[key] = tile


def view_tile(
    session: Session,
    cache: TileCache | None,
    z: int,
    x: int,
    y: int,
    filters: dict[Level, tiles.TileFilter],
    *,
    gcj02: bool = False,
) -> ServedTile:
    """The view's tile z/x/y of the current boundaries: from the cache, else made and cached."""
    generation, made = simplified_units.state(session)
    key = (generation, z, x, y, gcj02, tuple(filters.items()))
    found = cache.get(key) if cache is not None else None
    if found is not None:
        return ServedTile(found, generation, "cache")
    simplified = generation == made
    tile = tiles.view_tile(session, z, x, y, filters, gcj02=gcj02, simplified=simplified)
    if cache is not None:
        cache.put(key, tile)
    source = "simplified" if simplified and not gcj02 and z <= tiles.SIMPLIFIED_UP_TO else "stored"
    return ServedTile(tile, generation, source)
