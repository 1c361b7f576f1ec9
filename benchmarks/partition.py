"""Deterministic synthetic grid partitions (and points) for benchmarks.

`make_partition(n, seed)` tiles a near-square area with n irregular grids of about 100 m: the
Voronoi cells of a jittered 100 m lattice of seeds, computed in metric EPSG:4547, rounded to 1 cm
(`shapely.set_precision`, so edges shared by neighbours stay identical) and converted to storage
lon/lat (EPSG:4490). Codes follow the national format: county 411681, streets of 32x32 lattice
cells, communities of 4x4, grids numbered inside their community (rows are shuffled, so a grid's
row number says nothing about its code). Options make it messier, like real data:
`removed_share` drops grids (holes), `grown_share` buffers grids by 3-15 m (overlapping base grids,
decided by lowest code) and `special_share` adds rectangular special grids over the base grids.
At 100,000 grids the partition is about 31.6 km square.

`make_points(n, grids, seed)` draws points uniformly over the grids' extent widened by 1 % per side,
so about 4 % fall outside it (plus those in holes).
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import shapely

from geo.crs import STORAGE_CRS, transformer

METRIC_CRS = "EPSG:4547"  # CGCS2000 3-degree Gauss-Krüger zone 38 (CM 114°E)
SPACING_M = 100.0  # lattice spacing = typical grid width
PRECISION_M = 0.01
COUNTY = "411681"
COMMUNITY_CELLS = 4  # a community is 4x4 lattice cells, a street 8x8 communities
STREET_COMMUNITIES = 8


def _codes(row: np.ndarray, col: np.ndarray, ncols: int) -> list[str]:
    """15-digit grid codes from lattice positions: street, community, grid number."""
    c, s = COMMUNITY_CELLS, COMMUNITY_CELLS * STREET_COMMUNITIES
    street = (row // s) * math.ceil(ncols / s) + col // s + 1
    community = ((row // c) % STREET_COMMUNITIES) * STREET_COMMUNITIES + (col // c) % STREET_COMMUNITIES + 1
    grid = (row % c) * c + col % c + 1
    if street.max(initial=0) > 999:
        raise ValueError("too many grids for 999 streets")
    return [f"{COUNTY}{a:03d}{b:03d}{g:03d}" for a, b, g in zip(street, community, grid, strict=True)]


def _to_storage(geometries: np.ndarray) -> np.ndarray:
    """Metric EPSG:4547 geometries -> storage lon/lat (shared vertices map identically)."""
    t = transformer(METRIC_CRS, STORAGE_CRS)
    return shapely.transform(geometries, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def make_partition(
    n_grids: int,
    seed: int,
    *,
    center: tuple[float, float] = (114.9, 33.4),
    removed_share: float = 0.0,
    grown_share: float = 0.0,
    special_share: float = 0.0,
) -> gpd.GeoDataFrame:
    """n_grids base grids of ~100 m (minus removed ones) plus special grids; columns code, kind, geometry."""
    if n_grids < 2:
        raise ValueError("a partition needs at least 2 grids")
    rng = np.random.default_rng(seed)
    cx, cy = transformer(STORAGE_CRS, METRIC_CRS).transform(*center)
    ncols = math.ceil(math.sqrt(n_grids))
    nrows = math.ceil(n_grids / ncols)
    row, col = np.divmod(np.arange(n_grids), ncols)
    x0, y0 = cx - ncols * SPACING_M / 2, cy - nrows * SPACING_M / 2
    sx = x0 + (col + 0.5 + rng.uniform(-0.4, 0.4, n_grids)) * SPACING_M
    sy = y0 + (row + 0.5 + rng.uniform(-0.4, 0.4, n_grids)) * SPACING_M

    # The frame: full lattice rows plus the filled part of the last one (a staircase).
    full = n_grids // ncols
    frame = shapely.box(x0, y0, x0 + ncols * SPACING_M, y0 + full * SPACING_M)
    if n_grids % ncols:
        frame = frame.union(
            shapely.box(x0, y0 + full * SPACING_M, x0 + (n_grids % ncols) * SPACING_M, y0 + nrows * SPACING_M)
        )
    cells = shapely.get_parts(
        shapely.voronoi_polygons(
            shapely.multipoints(np.column_stack([sx, sy])), extend_to=frame, ordered=True
        )
    )
    shapely.prepare(frame)
    cells = shapely.set_precision(shapely.intersection(cells, frame), PRECISION_M)

    codes = _codes(row, col, ncols)
    urban = np.hypot(sx - cx, sy - cy) < 0.35 * max(ncols, nrows) * SPACING_M
    kinds = np.where(urban, "urban", "rural").astype(object)

    grown = rng.random(n_grids) < grown_share
    if grown.any():
        cells[grown] = shapely.set_precision(
            shapely.buffer(cells[grown], rng.uniform(3, 15, grown.sum()), join_style="mitre"), PRECISION_M
        )
    keep = rng.random(n_grids) >= removed_share

    # Special grids: rectangles of 0.5-3 grid widths, numbered 901, 902, ... in their community.
    n_special = round(special_share * n_grids)
    at = rng.integers(0, n_grids, n_special)
    w, h = rng.uniform(0.5, 3.0, (2, n_special)) * SPACING_M
    specials = shapely.set_precision(
        shapely.box(sx[at] - w / 2, sy[at] - h / 2, sx[at] + w / 2, sy[at] + h / 2), PRECISION_M
    )
    used: dict[str, int] = {}
    special_codes = []
    for i in at:
        community = codes[i][:12]
        used[community] = used.get(community, 900) + 1
        if used[community] > 999:
            raise ValueError(f"more than 99 special grids in community {community}")
        special_codes.append(f"{community}{used[community]:03d}")

    geometry = _to_storage(np.concatenate([cells[keep], specials]))
    out = gpd.GeoDataFrame(
        {
            "code": [c for c, k in zip(codes, keep, strict=True) if k] + special_codes,
            "kind": np.concatenate([kinds[keep], np.full(n_special, "special", dtype=object)]),
        },
        geometry=geometry,
        crs=STORAGE_CRS,
    )
    return out.iloc[rng.permutation(len(out))].reset_index(drop=True)


def make_points(
    n: int, grids: gpd.GeoDataFrame, seed: int, *, margin: float = 0.01
) -> tuple[np.ndarray, np.ndarray]:
    """n uniform storage (lon, lat) over the grids' extent widened by `margin` of it per side.

    With the default 1 % per side, about 4 % of the points fall outside the partition's box.
    """
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = grids.total_bounds
    mx, my = (maxx - minx) * margin, (maxy - miny) * margin
    return rng.uniform(minx - mx, maxx + mx, n), rng.uniform(miny - my, maxy + my, n)
