"""In-process batch assignment (geo.lookup.GridIndex) against geopandas.sjoin, on the same data.

    .venv/bin/python -m benchmarks.bench_lookup [--points 1000000] [--grids 0 2600 100000] [--repeat 3]

For the demo county (--grids 0) and each synthetic partition (benchmarks.partition, with 1 % holes,
1 % grown and 1 % special grids)
and the same uniform points (a few percent outside the grids):
  1. geopandas.sjoin(points, grids, predicate="within"), best of --repeat (the points'
     GeoDataFrame is built beforehand, fresh for each run, and not timed);
  2. GridIndex build (once) and GridIndex.assign, best of --repeat;
  3. checks: wherever sjoin finds a grid (several on overlaps: resolved by grid_precedence), the
     index must give that grid; and every answer must equal an exact reference (STRtree
     `intersects` + precedence for covered points, GEOS query_nearest in the metric CRS for the
     others), which is timed too.
Memory: for each stage, in a fresh process once partition and points exist, the growth of the peak
resident set (VmHWM, reset first where Linux allows) over the resident set.
Prints progress on stderr and a table on stdout; nothing here is a test.
"""

from __future__ import annotations

import argparse
import gc
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from benchmarks.partition import make_partition, make_points
from geo.assignment import grid_precedence
from geo.crs import STORAGE_CRS, transformer
from geo.demo import DEMO_DIR
from geo.lookup import ASSIGNED, SNAPPED, UNASSIGNED, GridIndex


def say(message: str) -> None:
    """Progress on stderr."""
    print(message, file=sys.stderr, flush=True)


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_mb(field: str = "VmHWM") -> float:
    """Peak (VmHWM, since the last reset) or current (VmRSS) resident set of this process, in MB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best_of(
    repeat: int, run: Callable[[Any], Any], prepare: Callable[[], Any] = lambda: None
) -> tuple[float, Any]:
    """Smallest wall time of `repeat` runs of run(prepare()), prepare untimed, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        arg = prepare()
        started = time.perf_counter()
        result = run(arg)
        best = min(best, time.perf_counter() - started)
    return best, result


def index_megabytes(index: GridIndex) -> float:
    """Size of the numpy arrays the index holds (rasters, candidate lists, segments), in MB."""
    total = 0
    for part in (index._grids, index._micro, index._nearest):
        if part is not None:
            arrays = [v for v in vars(part).values() if isinstance(v, np.ndarray) and v.dtype != object]
            total += sum(a.nbytes for a in arrays)
    return total / 2**20


def winners(point: np.ndarray, grid: np.ndarray, rank: np.ndarray, order: np.ndarray, n: int) -> np.ndarray:
    """Per point, the matched grid with the best precedence (-1 if none)."""
    best = np.full(n, len(rank), dtype=np.int64)
    np.minimum.at(best, point, rank[grid])
    return np.append(order, -1)[best]


def reference(
    grids: gpd.GeoDataFrame,
    lon: np.ndarray,
    lat: np.ndarray,
    rank: np.ndarray,
    order: np.ndarray,
    metric_crs: str,
) -> dict[str, np.ndarray]:
    """The rule with plain shapely/GEOS calls: STRtree intersects, then query_nearest in metres."""
    geoms = np.asarray(grids.geometry.array)
    point, grid = shapely.STRtree(geoms).query(shapely.points(lon, lat), predicate="intersects")
    chosen = winners(point, grid, rank, order, len(lon))
    loose = np.flatnonzero(chosen < 0)
    t = transformer(STORAGE_CRS, metric_crs)
    metric = shapely.transform(geoms, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))
    codes = grids["code"].to_numpy()
    (p, g), d = shapely.STRtree(metric).query_nearest(
        shapely.points(*t.transform(lon[loose], lat[loose])), return_distance=True, all_matches=True
    )
    by_code = np.lexsort((codes[g], p))  # per point, lowest code first
    first = by_code[np.append(True, p[by_code][1:] != p[by_code][:-1])]
    near, dist = np.full(len(loose), -1), np.full(len(loose), np.nan)
    near[p[first]], dist[p[first]] = g[first], d[first]
    return {"grid": chosen, "loose": loose, "near": near, "dist": dist}


DEMO = 0  # --grids 0 means the demo county's real layer (2,619 grids)


def demo_data(n_points: int, seed: int) -> tuple[gpd.GeoDataFrame, np.ndarray, np.ndarray]:
    """The demo county's grids; 98 % of the points inside the county, 2 % anywhere in its box."""
    grids = gpd.read_file(DEMO_DIR / "xiangcheng_grids.geojson")[["code", "kind", "geometry"]]
    county = gpd.read_file(DEMO_DIR / "xiangcheng_411681_boundary.geojson").geometry.iloc[0]
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = county.bounds
    lon, lat = rng.uniform(minx, maxx, 3 * n_points), rng.uniform(miny, maxy, 3 * n_points)
    inside = shapely.contains_xy(county, lon, lat)
    n_in = int(n_points * 0.98)
    lon = np.concatenate([lon[inside][:n_in], lon[~inside][: n_points - n_in]])
    lat = np.concatenate([lat[inside][:n_in], lat[~inside][: n_points - n_in]])
    return grids, lon, lat


def data(n_grids: int, n_points: int, seed: int) -> tuple[gpd.GeoDataFrame, np.ndarray, np.ndarray]:
    """The partition (or the demo county) and the points of one run."""
    if n_grids == DEMO:
        return demo_data(n_points, seed)
    grids = make_partition(n_grids, seed, removed_share=0.01, grown_share=0.01, special_share=0.01)
    return grids, *make_points(n_points, grids, seed + 1)


def stage_memory(stage: str, n_grids: int, n_points: int, seed: int) -> float:
    """Growth of the peak RSS over the RSS once the data exist, for one stage in this process."""
    grids, lon, lat = data(n_grids, n_points, seed)
    gc.collect()
    reset_peak()
    before = peak_mb("VmRSS")
    if stage == "sjoin":
        points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=STORAGE_CRS)
        gpd.sjoin(points, grids[["geometry"]], predicate="within")
    else:
        index = GridIndex(grids["code"].tolist(), grids["kind"].tolist(), np.asarray(grids.geometry.array))
        index.assign(lon, lat, nearest=False)
    return peak_mb() - before


def memory_in_subprocess(stage: str, n_grids: int, n_points: int, seed: int) -> float:
    """stage_memory in a fresh interpreter, so that memory freed by earlier stages cannot hide any."""
    argv = ["--memory", stage, "--grids", str(n_grids), "--points", str(n_points), "--seed", str(seed)]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_lookup", *argv], capture_output=True, text=True, check=True
    )
    return float(done.stdout.split()[-1])


def run(n_grids: int, n_points: int, repeat: int, seed: int) -> dict[str, Any]:
    """Measure and check one partition size."""
    say(f"{n_grids:,} grids: generating partition and {n_points:,} points ...")
    grids, lon, lat = data(n_grids, n_points, seed)
    codes, kinds = grids["code"].tolist(), grids["kind"].tolist()
    order = np.array(sorted(range(len(grids)), key=lambda i: grid_precedence(kinds[i], codes[i])))
    rank = np.empty(len(grids), dtype=np.int64)
    rank[order] = np.arange(len(grids))
    row: dict[str, Any] = {"grids": len(grids), "points": n_points}

    say("  geopandas.sjoin(points, grids, predicate='within') ...")
    polygons = grids[["geometry"]]
    sjoin_s, joined = best_of(
        repeat,
        lambda pts: gpd.sjoin(pts, polygons, predicate="within"),
        lambda: gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=STORAGE_CRS),
    )
    row["sjoin_s"] = sjoin_s

    say("  GridIndex build ...")
    index = GridIndex(codes, kinds, np.asarray(grids.geometry.array))
    row["build_s"] = index.build_seconds
    row["edge_cells"] = index.edge_share
    row["index_mb"] = index_megabytes(index)
    say(f"  built in {index.build_seconds:.1f} s; GridIndex.assign x{repeat} ...")
    # What `gridmap assign` runs (no nearest grid for unassigned points); the full answer is
    # timed too and is the one checked below.
    row["assign_s"], lean = best_of(repeat, lambda _: index.assign(lon, lat, nearest=False))
    row["assign_full_s"], result = best_of(repeat, lambda _: index.assign(lon, lat))
    assert np.array_equal(lean.grid, result.grid) and np.array_equal(lean.status, result.status)
    row["uncovered"] = float(np.mean(result.status != ASSIGNED))
    covered = result.status == ASSIGNED
    row["covered_s"], _ = best_of(repeat, lambda _: index.assign(lon[covered], lat[covered]))
    row["covered_points"] = int(covered.sum())

    say("  checking against sjoin ...")
    sj = winners(joined.index.to_numpy(), joined["index_right"].to_numpy(), rank, order, n_points)
    matched = sj >= 0
    ours = np.where(result.status == ASSIGNED, result.grid, -1)
    # sjoin's "within" leaves out boundary points, which the rule counts: a point on the boundary
    # of a grid may get it (or, on a special's edge, the special) where sjoin finds none (another).
    odd = np.flatnonzero((ours != sj) & ((ours >= 0) | matched))
    boundaries = shapely.boundary(np.asarray(grids.geometry.array)[ours[odd].clip(0)])
    explained = (ours[odd] >= 0) & shapely.intersects_xy(boundaries, lon[odd], lat[odd])
    row["sjoin_checked"] = int(matched.sum())
    row["sjoin_on_edge"] = int(explained.sum())
    row["sjoin_differ"] = int((~explained).sum())

    say("  exact reference (STRtree intersects + GEOS query_nearest) ...")
    started = time.perf_counter()
    ref = reference(grids, lon, lat, rank, order, index.metric_crs)
    row["reference_s"] = time.perf_counter() - started
    loose = ref["loose"]
    snapped = ref["dist"] <= index.snap_tolerance_m
    expect_status = np.full(n_points, ASSIGNED, dtype=np.uint8)
    expect_status[loose] = np.where(snapped, SNAPPED, UNASSIGNED)
    expect_grid = ref["grid"].copy()
    expect_grid[loose] = np.where(snapped, ref["near"], -1)
    expect_near = np.full(n_points, -1)
    expect_near[loose] = np.where(snapped, -1, ref["near"])
    got_dist = np.where(result.status == SNAPPED, result.distance_m, result.nearest_m)[loose]
    row["reference_differ"] = int(
        np.sum(result.status != expect_status)
        + np.sum(result.grid != expect_grid)
        + np.sum(result.nearest != expect_near)
        + np.sum(~np.isclose(got_dist, ref["dist"], rtol=1e-9, atol=1e-6))
    )
    return row


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument(
        "--grids", type=int, nargs="+", default=[DEMO, 2_600, 100_000], help="0 = the demo county"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--memory", choices=["sjoin", "index"], help=argparse.SUPPRESS)  # internal
    args = parser.parse_args()
    if args.memory:
        print(stage_memory(args.memory, args.grids[0], args.points, args.seed))
        return
    rows = [run(n, args.points, args.repeat, args.seed) for n in args.grids]
    for r, n in zip(rows, args.grids, strict=True):
        say(f"{n:,} grids: peak memory of each stage in a fresh process ...")
        r["sjoin_mem_mb"] = memory_in_subprocess("sjoin", n, args.points, args.seed)
        r["index_mem_mb"] = memory_in_subprocess("index", n, args.points, args.seed)

    print()
    header = (
        f"{'grids':>8} {'points':>9} {'uncov.':>6} | {'sjoin s':>7} {'M pts/s':>7} | {'build s':>7} "
        f"{'assign s':>8} {'M pts/s':>7} {'ratio':>6} | {'edge':>5} {'index MB':>8} {'+peak MB':>8} "
        f"{'sjoin +peak':>11} | {'ref s':>5} identical"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        ok = r["sjoin_differ"] == 0 and r["reference_differ"] == 0
        print(
            f"{r['grids']:>8,} {r['points']:>9,} {r['uncovered']:>6.1%} | {r['sjoin_s']:>7.2f} "
            f"{r['points'] / r['sjoin_s'] / 1e6:>7.2f} | {r['build_s']:>7.1f} {r['assign_s']:>8.3f} "
            f"{r['points'] / r['assign_s'] / 1e6:>7.2f} {r['sjoin_s'] / r['assign_s']:>5.1f}x | "
            f"{r['edge_cells']:>5.1%} {r['index_mb']:>8.0f} {r['index_mem_mb']:>8.0f} "
            f"{r['sjoin_mem_mb']:>11.0f} | {r['reference_s']:>5.1f} "
            f"{'yes' if ok else 'NO'} ({r['sjoin_checked']:,} vs sjoin, all vs reference)"
        )
        print(
            f"{'':>8} with nearest grids of unassigned points: "
            f"{r['points'] / r['assign_full_s'] / 1e6:.2f} M pts/s"
            f" ({r['sjoin_s'] / r['assign_full_s']:.1f}x); "
            f"covered points only: {r['covered_points'] / r['covered_s'] / 1e6:.2f} M pts/s; "
            f"boundary points sjoin leaves out: {r['sjoin_on_edge']}"
            + ("" if ok else f"; DIFFERENCES: sjoin {r['sjoin_differ']}, reference {r['reference_differ']}")
        )
    print(
        "\nuncov. = share of points no grid covers (snapped or unassigned); edge = raster cells whose "
        "points are tested exactly;\nindex MB = numpy arrays held by the index; +peak MB = peak RSS of "
        "build + assign above the RSS once partition and points exist, in a fresh process\n(sjoin +peak: "
        "the same for building the points GeoDataFrame + sjoin)."
    )


if __name__ == "__main__":
    main()
