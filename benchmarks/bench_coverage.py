"""Coverage analysis: the demo county through the store, a synthetic 100,000-grid partition, and a
stored province with the refresh after a publish.

    .venv/bin/python -m benchmarks.bench_coverage [--grids 100000] [--seed 7] [--no-demo]
    .venv/bin/python -m benchmarks.bench_coverage --database URL [--province 41] [--whole] [--refresh-only]

With `--database` (a database holding a province, e.g. one imported from benchmarks/province.py)
only the province is measured (benchmarks/bench_coverage_province.py): the whole province as
`gridmap coverage --unit 41` runs it, and the refresh after a publish of one community's redraw;
with `--refresh-only`, the refresh alone from the province's stored report (saved before, e.g. by
`gridmap coverage --unit 41 --save`), with the time to read that report and the refreshed one.

Demo county: its own database in the embedded cluster (or GRIDMAP_BENCH_DATABASE_URL prefix),
loaded once (not timed); then `store.coverage.run_coverage` on 411681 is timed: loading the
subtree with people and cases, the analysis at every level, and the comparison with the last report.

Synthetic: benchmarks.partition with 1 % of grids removed and 1 % grown 3-15 m into their
neighbours; communities, streets and the county are the unions of the undamaged partition.
Timed: `geo.coverage.analyse_tree` over all of it. Checked: every removed grid lies in a gap,
every grown grid is named by an overlap or overhang, and every finding is explained by an
injected problem. Peak memory is the process's peak resident set (GEOS allocates outside Python).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections import Counter

import numpy as np
import shapely
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from benchmarks.bench_postgis import database, say
from benchmarks.partition import make_partition
from geo.coverage import Finding, Kind, Tolerances, Unit, analyse_tree
from geo.settings import Settings
from services.imports import load_demo
from store.coverage import run_coverage

DEMO_DATABASE = "gridmap_bench_coverage"


def peak_rss_mb() -> float:
    """The process's peak resident set so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_demo(settings: Settings, tol: Tolerances, repeats: int = 3) -> None:
    """Coverage of the whole demo county through the store (best of `repeats`)."""
    engine = create_engine(database(DEMO_DATABASE, settings))
    with Session(engine) as session, session.begin():
        load_demo(session, settings, progress=lambda m: None)
    best = None
    for _ in range(repeats):
        with Session(engine) as session:
            t0 = time.perf_counter()
            run = run_coverage(session, "411681", tol)
            took = time.perf_counter() - t0
        if best is None or took < best[0]:
            best = (took, run)
    took, run = best
    counts = Counter(f.kind.value for f in run.findings)
    print(
        f"demo county 411681: {took:.2f} s (load {run.timings['load_s']:.2f} s, "
        f"analyse {run.timings['analyse_s']:.2f} s, compare {run.timings['compare_s']:.2f} s); "
        f"findings {dict(sorted(counts.items()))}; peak RSS so far {peak_rss_mb():.0f} MB"
    )
    engine.dispose()


def synthetic_units(n_grids: int, seed: int) -> tuple[list[Unit], dict[str, shapely.Geometry], set[str]]:
    """Units of a damaged partition, the removed grids' cells and the grown grids' codes."""
    clean = make_partition(n_grids, seed)
    damaged = make_partition(n_grids, seed, removed_share=0.01, grown_share=0.01)
    cells = dict(zip(clean.code, clean.geometry.values, strict=True))
    codes = np.array(list(cells))
    geoms = np.array(list(cells.values()), dtype=object)
    units = []
    for length in (6, 9, 12):  # county, streets, communities: unions of the undamaged grids
        keys = np.array([c[:length] for c in codes])
        for key in np.unique(keys):
            units.append(Unit(str(key), shapely.coverage_union_all(geoms[keys == key])))
    kept = dict(zip(damaged.code, damaged.geometry.values, strict=True))
    units += [
        Unit(c, g, kind=k)
        for c, k, g in zip(damaged.code, damaged.kind, damaged.geometry.values, strict=True)
    ]
    removed = {c: g for c, g in cells.items() if c not in kept}
    grown = {c for c, g in kept.items() if not shapely.equals_exact(g, cells[c], 0.0)}
    return units, removed, grown


def check(findings: list[Finding], removed: dict[str, shapely.Geometry], grown: set[str]) -> str:
    """Every injected problem found, every finding explained; a line saying so (or what is wrong)."""
    gaps = [f for f in findings if f.kind == Kind.GAP or f.detail.get("of") == "gap"]
    tree = shapely.STRtree([f.geometry for f in gaps])
    cells = list(removed.values())
    hit = tree.query(cells, predicate="intersects")
    found_removed = {list(removed)[i] for i in np.unique(hit[0])}
    explained_gaps = set(np.unique(hit[1]).tolist())
    named = {c for f in findings if f.kind != Kind.GAP and f.detail.get("of") != "gap" for c in f.units}
    found_grown = grown & named
    unexplained = [
        f
        for i, f in enumerate(gaps)
        if i not in explained_gaps  # a gap where no grid was removed
    ] + [
        f
        for f in findings
        if f.kind in (Kind.OVERLAP, Kind.OUTSIDE_PARENT)
        or f.detail.get("of") in ("overlap", "outside_parent")
        if not set(f.units) & grown
    ]
    ok = len(found_removed) == len(removed) and found_grown == grown and not unexplained
    return (
        f"{'ALL FOUND' if ok else 'MISSED OR SPURIOUS'}: "
        f"removed grids in a gap {len(found_removed)}/{len(removed)}, "
        f"grown grids named {len(found_grown)}/{len(grown)}, unexplained findings {len(unexplained)}"
    )


def bench_synthetic(n_grids: int, seed: int, tol: Tolerances) -> None:
    """Coverage of a damaged synthetic partition, in process."""
    say(f"building a {n_grids:,}-grid partition ...")
    units, removed, grown = synthetic_units(n_grids, seed)
    before = peak_rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    findings = analyse_tree(units, tol)
    took, cpu = time.perf_counter() - t0, time.process_time() - c0
    counts = Counter(f.kind.value for f in findings)
    print(
        f"synthetic {n_grids:,} grids ({len(units):,} units), 1 % removed / 1 % grown: "
        f"{took:.2f} s wall, {cpu:.2f} s CPU; findings {dict(sorted(counts.items()))}; "
        f"peak RSS {peak_rss_mb():.0f} MB (before the analysis {before:.0f} MB)"
    )
    print("  " + check(findings, removed, grown))


def main() -> None:
    """Run both benchmarks and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-demo", action="store_true", help="skip the demo county (no database)")
    parser.add_argument("--database", help="URL of a database holding a province: measure it instead")
    parser.add_argument("--province", default="41", help="the province's code (with --database)")
    parser.add_argument("--whole", action="store_true", help="also the whole subtree in one analysis")
    parser.add_argument(
        "--refresh-only",
        action="store_true",
        help="with --database: only the refresh after a publish, from the province's stored report",
    )
    args = parser.parse_args()
    if args.database:
        from benchmarks.bench_coverage_province import bench_province, refresh_stored

        if args.refresh_only:
            refresh_stored(args.database, args.province)
        else:
            bench_province(args.database, args.province, whole=args.whole)
        return
    settings = Settings(database_url=None)
    tol = Tolerances.from_settings(settings)
    if not args.no_demo:
        bench_demo(settings, tol)
    bench_synthetic(args.grids, args.seed, tol)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
