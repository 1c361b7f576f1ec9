"""Digests of a boundary file's features, so that a re-import knows what it already stored (issue 19 §2).

A feature's digest covers what the import makes of it: the row's cells (every column but the
geometry, with their names and types), its geometry as WKB, the coordinate system it is read in
and whether --repair is on. Two rows with the same digest are stored the same way, so a feature
whose digest is its unit's current version's (store.import_digests) is unchanged and needs no
conversion or check; any other feature goes through every step as before. A digest is 16 bytes of
BLAKE2b: a false match needs a 2⁻¹²⁸ collision, and a digest that misses (another column order,
a driver that reads a number as text) only costs the full comparison.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import shapely

from geo.codes import CODE_LENGTH, LEVELS

DIGEST_BYTES = 16
# A code's length → its parent's (a province's parent is the empty prefix, which no code is).
_PARENT_LENGTH = {CODE_LENGTH[b]: CODE_LENGTH[a] for a, b in itertools.pairwise(LEVELS)} | {
    CODE_LENGTH[LEVELS[0]]: 0
}


def feature_digests(frame: gpd.GeoDataFrame, crs_name: str, *, repair: bool) -> list[bytes]:
    """The digest of each row of `frame` as read in `crs_name` (with or without --repair)."""
    columns = [c for c in frame.columns if c != frame.geometry.name]
    # The header is in every digest: a file read in another CRS, or repaired, is stored differently.
    header = repr((crs_name, repair, columns)).encode()
    wkbs = shapely.to_wkb(np.asarray(frame.geometry.values, dtype=object), byte_order=1)
    cells = [frame[c].tolist() for c in columns]
    out = []
    rows = zip(*cells, strict=True) if cells else iter([()] * len(frame))
    for wkb, row in zip(wkbs.tolist(), rows, strict=True):
        # repr keeps types apart (1, 1.0 and '1'); a missing geometry hashes as b"".
        h = hashlib.blake2b(header, digest_size=DIGEST_BYTES)
        h.update(repr(row).encode())
        h.update(wkb or b"")
        out.append(h.digest())
    return out


def duplicated(codes: list[str]) -> bool:
    """Whether any code appears twice (then every feature is checked, so the report names them)."""
    return any(n > 1 for n in Counter(codes).values())


def rows_to_check(codes: list[str], digests: list[bytes], stored: Mapping[str, bytes]) -> list[int]:
    """Positions of the rows an import must convert and check: every row whose digest is not its
    unit's stored one, and the children in the file of those (held against their new parent; a
    micro-grid takes its grid's kind). Every row when a code appears twice."""
    if duplicated(codes):
        return list(range(len(codes)))
    changed = {c for c, d in zip(codes, digests, strict=True) if stored.get(c) != d}
    if not changed:
        return []
    # A row that is not changed has a stored code, so its parent is its code less its last digits.
    return [i for i, c in enumerate(codes) if c in changed or c[: _PARENT_LENGTH[len(c)]] in changed]
