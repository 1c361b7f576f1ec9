"""Cases at volume (issue 19 §2): the dispatcher's list, statistics, the dashboard, an escalation
pass and a county's redraw reassignment at 100,000 / 1 M / 10 M cases over a year.

    .venv/bin/python -m benchmarks.bench_cases [--sizes 100000,1000000,10000000] [--runs 20] [--reuse]
        [--name gridmap_bench_cases] [--url DATABASE_URL] [--only list,stats,dashboard,escalate,redraw]

A database of its own (`gridmap_bench_cases`, the demo county loaded), grown size by size with
benchmarks.case_volume (COPY; load time printed); --reuse grows the one an earlier run left (drop
it when done: it takes ~1.3 GB a million cases); --url measures a database loaded before (by
benchmarks.case_volume or another loader, the demo county's units in it) as it is, loading
nothing but migrating it to the current head first (which backfills the roll-up; timed); --only
picks figures; --county measures another county than the demo's (e.g. 410101 of the synthetic
province, whose 10 M cases case_volume loads over all 400,000 grids; the province is its first two
digits). Each figure is the server's own work: the function the route calls, run in this process
on one session (no HTTP, no JSON encoding) of a connection made as the service makes them
(store.engine.SERVICE_CONNECT_ARGS: generic plans, no JIT):
  list      GET /cases?unit=<street>&status=<in handling>&light=red, each street in turn (p50/p95)
  stats     GET /stats for the county over the year, and for the province (41) over the last month
            (read from the daily roll-up of 0019_case_rollup; a load that bypassed its triggers,
            as case_volume's COPY does, is followed by its rebuild, timed)
  dashboard GET /stats/dashboard?unit=411681 (every figure of the first view) at 15:00 on the
            year's last day, then its parts
  escalate  three passes of `gridmap escalate` (500 overdue cases at most), each rolled back (with
            --only escalate the first is the process's first: cold)
  redraw    a redraw of the whole county (each grid takes the next one's outline: nearly every open
            case moves), rolled back: the publish's two steps on the county's open cases, finding
            and assigning them again set-based (services.case_redraw.moved_cases) and reassigning
            the moved (reassign_after_redraw); against one store.locate per case as before (timed
            on 1,000 and extrapolated).
Intake at volume: benchmarks.bench_intake --cases N. The demo county is one county: "the province
and a month" reads every case of the month (a year of 10 M cases: 830,000 a month), the same rows a
province of 160 counties would hold. Machine load is printed: on a busy machine the figures are not
quiet-machine figures.
"""

from __future__ import annotations

import argparse
import os
import statistics as stats
import time
from datetime import datetime, timedelta

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from benchmarks.bench_postgis import database, reused, say
from benchmarks.case_volume import load_cases
from cases.dashboard import periods
from cases.lifecycle import OPEN_HANDLING
from cases.partitions import month_bounds, month_of
from cases.worktime import SHANGHAI
from geo.codes import CODE_LENGTH, Level
from geo.settings import Settings
from geo.validation import UnitFeature
from services import case_reads
from services.case_redraw import moved_cases, reassign_after_redraw
from services.dashboard import dashboard
from services.escalation import escalate_overdue
from services.imports import load_demo
from store import case_redraw as store_case_redraw
from store import case_rollup
from store import cases as case_store
from store import dashboard as board
from store.case_stats import statistics
from store.custom_plans import custom_plans
from store.engine import SERVICE_CONNECT_ARGS
from store.geometry import from_wkb
from store.locate import locate
from store.migrate import upgrade
from store.units import write_units

NAME = "gridmap_bench_cases"
COUNTY = "411681"
END = datetime(2026, 12, 1, tzinfo=SHANGHAI)  # the generated year ends here
# The dashboard is opened at 15:00 on the year's last day: "today" and "this month" end inside a
# day, so the hours after it are read from the cases (where a live service has none yet: harder).
BOARD_NOW = END - timedelta(hours=9)


def timed(work) -> tuple[float, object]:
    """(milliseconds, result) of one call."""
    start = time.perf_counter()
    result = work()
    return (time.perf_counter() - start) * 1000, result


def p95(ms: list[float]) -> float:
    """The 95th percentile."""
    return sorted(ms)[max(0, round(0.95 * len(ms)) - 1)]


def rolled_back(engine, work) -> tuple[float, object]:
    """Time `work(session)` in a transaction that is then rolled back."""
    with Session(engine) as session:
        ms, result = timed(lambda: work(session))
        session.rollback()
    return ms, result


def codes(session: Session, level: str) -> list[str]:
    """The codes of the demo county's units of one level."""
    sql = "SELECT code FROM units WHERE level = :level AND code LIKE :c ORDER BY code"
    return list(session.execute(text(sql), {"level": level, "c": COUNTY + "%"}).scalars())


PARTS = ("list", "stats", "dashboard", "escalate", "redraw")


def measure(engine, rules, runs: int, tolerance_m: float, parts: tuple[str, ...] = PARTS) -> dict[str, str]:
    """The figures of `parts` at the database's current size."""
    out: dict[str, str] = {}
    with Session(engine) as session:
        if "list" in parts:
            streets = codes(session, "street")
            handling = [s.value for s in OPEN_HANDLING]
            ms = []
            for i in range(runs):
                f = case_store.CaseFilter(unit=streets[i % len(streets)], status=handling, light="red")
                ms.append(timed(lambda f=f: case_reads.list_cases(session, f, rules))[0])
            out["list p50/p95 ms"] = f"{stats.median(ms):.0f} / {p95(ms):.0f}"
        if "stats" in parts:
            year = [
                timed(lambda: statistics(session, COUNTY, END - timedelta(days=365), END))[0]
                for _ in range(3)
            ]
            out["stats county·year ms"] = f"{stats.median(year):.0f}"
            start, stop = month_bounds(month_of(END - timedelta(days=1)))
            month = [timed(lambda: statistics(session, COUNTY[:2], start, stop))[0] for _ in range(3)]
            out["stats province·month ms"] = f"{stats.median(month):.0f}"
            since = BOARD_NOW - timedelta(days=30)  # /stats' default period: both ends inside a day
            default = [timed(lambda: statistics(session, COUNTY, since, BOARD_NOW))[0] for _ in range(3)]
            out["stats county·30 days to 15:00 ms"] = f"{stats.median(default):.0f}"
            out.update(grid_stats(session))
        if "dashboard" in parts:
            view = lambda: dashboard(session, rules, None, COUNTY, now=BOARD_NOW)  # noqa: E731
            first = [timed(view)[0] for _ in range(3)]
            out["dashboard ms"] = f"{stats.median(first):.0f}"
            out["dashboard parts ms"] = dashboard_parts(session, rules)
            grid, community = busiest_grid(session)
            for name, code in (("community", community), ("grid", grid)):
                view = lambda code=code: dashboard(session, rules, None, code, now=BOARD_NOW)  # noqa: E731
                out[f"dashboard {name} ms"] = f"{stats.median([timed(view)[0] for _ in range(3)]):.0f}"
    if "escalate" in parts:
        out.update(escalation(engine, rules))
    if "redraw" in parts:
        out.update(redraw(engine, rules, tolerance_m))
    return out


def busiest_grid(session: Session) -> tuple[str, str]:
    """(the county's grid holding the most cases, its community): the finest figures' worst case,
    read from the cases since 0022_case_rollup_keys."""
    sql = "SELECT grid_code FROM cases WHERE grid_code LIKE :c GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    grid = session.execute(text(sql), {"c": COUNTY + "%"}).scalar_one()
    return grid, grid[: CODE_LENGTH[Level.COMMUNITY]]


def grid_stats(session: Session) -> dict[str, str]:
    """/stats for the busiest grid and its community, over the year and the last month."""
    grid, community = busiest_grid(session)
    start, stop = month_bounds(month_of(END - timedelta(days=1)))
    out = {}
    for name, code in (("community", community), ("grid", grid)):
        for span, since, until in (("year", END - timedelta(days=365), END), ("month", start, stop)):
            ms = [timed(lambda c=code, a=since, b=until: statistics(session, c, a, b))[0] for _ in range(3)]
            out[f"stats {name}·{span} ms"] = f"{stats.median(ms):.0f}"
    n = session.execute(text("SELECT count(*) FROM cases WHERE grid_code = :g"), {"g": grid}).scalar()
    out["busiest grid (cases)"] = f"{grid} ({n:,})"
    return out


def dashboard_parts(session: Session, rules) -> str:
    """Where the dashboard's time goes: each part once (after the runs above: warm)."""
    spans = periods(BOARD_NOW)
    parts = {
        "stats×2": lambda: [
            statistics(session, COUNTY, spans[p].start, spans[p].end) for p in ("today", "month")
        ],
        "open+overdue": lambda: [board.case_count(session, rules, COUNTY, overdue=o) for o in (None, True)],
        "ranking": lambda: board.ranking(session, rules, COUNTY, spans["month"]),
        "trend": lambda: board.trend(session, COUNTY, BOARD_NOW),
        "categories": lambda: board.top_categories(session, rules, COUNTY, spans["month"]),
        "density": lambda: board.density(session, COUNTY, spans["trend"]),
    }
    with custom_plans(session):  # as services.dashboard runs them
        return ", ".join(f"{name} {timed(work)[0]:.0f}" for name, work in parts.items())


def rollup_ready(url: str) -> str:
    """Rebuild the roll-up when a load bypassed its triggers; its rows and size, and the rebuild's time."""
    engine = create_engine(url)
    with Session(engine) as session, session.begin():
        rolled, stored = case_rollup.received_total(session)
        ms = 0.0
        if rolled != stored:
            ms, _ = timed(lambda: case_rollup.rebuild(session))
    sized = rollup_size(engine)
    engine.dispose()
    rebuilt = f"rebuilt in {ms / 1000:.1f} s" if ms else "kept by the triggers"
    return f"{sized}, {rebuilt}"


def rollup_size(engine) -> str:
    """The roll-up's rows and size on disk (indexes included)."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM case_rollup")).scalar()
        size = conn.execute(text("SELECT pg_size_pretty(pg_total_relation_size('case_rollup'))")).scalar()
    return f"{rows:,} rows, {size}"


def escalation(engine, rules) -> dict[str, str]:
    """Three passes of `gridmap escalate`, each rolled back (the process's first pass is cold)."""
    passes = []
    for _ in range(3):
        ms, moved = rolled_back(engine, lambda s: escalate_overdue(s, rules, now=END))
        passes.append(f"{ms:.0f}")
    return {"escalation passes ms (moved)": f"{' / '.join(passes)} ({moved})"}


def redraw(engine, rules, tolerance_m: float) -> dict[str, str]:
    """A redraw of the whole county, rolled back: every grid gets the outline of the next one (by
    code), so that nearly every open case moves; then the publish's two steps, timed apart."""
    with Session(engine) as session:
        _permute_grids(session, END)
        grids = codes(session, "grid")
        # What the publish did before: one store.locate per candidate (timed on 1,000).
        store_case_redraw.collect_candidates(session, grids, None)
        sample = store_case_redraw.candidates(session)[:1000]
        one_ms, _ = timed(lambda: [locate(session, r.lon, r.lat, tolerance_m=tolerance_m) for r in sample])
        find_ms, moved = timed(lambda: moved_cases(session, grids, None, tolerance_m=tolerance_m))
        open_cases = session.execute(text(f"SELECT count(*) FROM {store_case_redraw.CANDIDATES}")).scalar()
        moves = [(row.id, row.reported_at, answer) for row, answer in moved]
        ms, _ = timed(lambda: reassign_after_redraw(session, moves, actor="bench", plan_id=0, now=END))
        session.rollback()
    per = one_ms / max(1, len(sample))
    return {
        "redraw: open cases (moved)": f"{open_cases:,} ({len(moves):,})",
        "find + assign again s": f"{find_ms / 1000:.1f}",
        "one store.locate each s (extrap.)": f"{per * open_cases / 1000:.1f}",
        "reassign s": f"{ms / 1000:.1f}",
        "redraw total s (≤ 30)": f"{(find_ms + ms) / 1000:.1f}",
    }


def _permute_grids(session: Session, at: datetime) -> None:
    """New versions of the county's grids from `at`: each takes the outline of the next (by code)."""
    rows = session.execute(
        text(
            """SELECT v.code, v.name, v.kind, v.special_type, ST_AsBinary(v.geom) AS wkb
               FROM unit_versions v JOIN units u USING (code)
               WHERE u.level = 'grid' AND v.valid_to IS NULL AND v.code LIKE :c ORDER BY v.code"""
        ),
        {"c": COUNTY + "%"},
    ).all()
    outlines = [from_wkb(r.wkb) for r in rows]
    features = [
        UnitFeature(r.code, r.name, Level.GRID, outlines[(i + 1) % len(rows)], r.kind, r.special_type)
        for i, r in enumerate(rows)
    ]
    write_units(session, features, valid_from=at)


def machine() -> str:
    """The machine's load, as `uptime` says."""
    load = os.getloadavg()
    return f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores"


def main() -> None:
    global COUNTY  # the county measured: the demo's, or --county (e.g. 410101 of the synthetic province)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--reuse", action="store_true", help="grow the database an earlier run left")
    parser.add_argument("--name", default=NAME, help="the database's name in the embedded cluster")
    parser.add_argument("--url", help="measure this database, migrated to head: nothing loaded")
    parser.add_argument("--only", default=",".join(PARTS), help="the figures to measure: " + ",".join(PARTS))
    parser.add_argument(
        "--county", default=COUNTY, help="the county measured (its first 2 digits: the province)"
    )
    args = parser.parse_args()
    COUNTY = args.county
    settings = Settings(database_url=None)
    parts = tuple(p for p in args.only.split(",") if p)
    if unknown := set(parts) - set(PARTS):
        parser.error(f"--only: no such figure {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    if args.url:
        say(f"migrating ({machine()})")
        migrate_ms, _ = timed(lambda: upgrade(args.url))
        migrated = {"migrate (0019 backfill) s": f"{migrate_ms / 1000:.1f}"}
        migrated["roll-up"] = rollup_ready(args.url)
        engine = create_engine(args.url, connect_args=SERVICE_CONNECT_ARGS)
        _print(_measured(engine, settings, args.runs, parts, migrated))
        return
    url = reused(args.name, settings) if args.reuse else None
    if url is None:
        url = database(args.name, settings)
        with Session(create_engine(url)) as session, session.begin():
            load_demo(session, settings, progress=say)
    engine = create_engine(url, connect_args=SERVICE_CONNECT_ARGS)  # as the service's connections
    for n in (int(s) for s in args.sizes.split(",")):
        say(f"loading {n:,} cases ({machine()})")
        load_ms, added = timed(lambda n=n: load_cases(url, n, end=END))
        loaded = {"load s": f"{load_ms / 1000:.0f} (+{added:,})", "roll-up": rollup_ready(url)}
        _print(_measured(engine, settings, args.runs, parts, loaded))
    engine.dispose()


def _measured(engine, settings: Settings, runs: int, parts: tuple[str, ...], load: dict[str, str]) -> dict:
    """One row of figures: the database's size, then every figure of `parts`, then the load."""
    rules = case_store.Rules.load(settings)
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM cases")).scalar()
        size = conn.execute(text("SELECT pg_size_pretty(pg_database_size(current_database()))")).scalar()
    row = {"cases": f"{n:,}", **load, "database": size, "machine before": machine()}
    row.update(measure(engine, rules, runs, settings.snap_tolerance_m, parts))
    row["machine after"] = machine()
    return row


def _print(row: dict[str, str]) -> None:
    for k, v in row.items():
        print(f"{k:>36}  {v}", flush=True)
    print(flush=True)


if __name__ == "__main__":
    main()
