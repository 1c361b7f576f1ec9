"""Cases at volume (issue 19 §2): the dispatcher's list, statistics, the dashboard, an escalation
pass and a county's redraw reassignment at 100,000 / 1 M / 10 M cases over a year.

    .venv/bin/python -m benchmarks.bench_cases [--sizes 100000,1000000,10000000] [--runs 20] [--reuse]
        [--name gridmap_bench_cases] [--url postgresql+psycopg://…/db --no-load] [--quick]

A database of its own (`gridmap_bench_cases`, the demo county loaded), grown size by size with
benchmarks.case_volume (COPY; load time printed); --reuse grows the one an earlier run left (drop
it when done: it takes ~1.3 GB a million cases). --url measures a database loaded otherwise
(migrated to the current head first, which backfills the roll-up; --no-load: as it is, nothing
added). Each figure is the server's own work: the function the route calls, run in this process
on one session (no HTTP, no JSON encoding):
  list      GET /cases?unit=<street>&status=<in handling>&light=red, each street in turn (p50/p95)
  stats     GET /stats for the county over the year, and for the province (41) over the last month
            (read from the daily roll-up of 0019_case_rollup; a load that bypassed its triggers,
            as case_volume's COPY does, is followed by its rebuild, timed)
  dashboard GET /stats/dashboard?unit=411681 (every figure of the first view) at 15:00 on the
            year's last day, then its parts
  escalate  one pass of `gridmap escalate` (500 overdue cases at most), rolled back
  redraw    every open case of the county moved to another grid (services.case_redraw), rolled back;
            before it, the publish finds the candidates (store.plan_publish.open_cases_near over the
            county's grids) and assigns each again (store.locate: timed on 1,000 and extrapolated).
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
from geo.assignment import Assignment, GridRef, Rule, Status, UnitRef
from geo.settings import Settings
from services.case_redraw import reassign_after_redraw
from services.dashboard import dashboard
from services.escalation import escalate_overdue
from services.imports import load_demo
from store import case_rollup
from store import cases as case_store
from store import dashboard as board
from store.case_stats import statistics
from store.locate import locate
from store.migrate import upgrade
from store.plan_publish import open_cases_near

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


def measure(engine, rules, runs: int, quick: bool = False) -> dict[str, str]:
    """Every figure at the database's current size."""
    out: dict[str, str] = {}
    with Session(engine) as session:
        streets = codes(session, "street")
        handling = [s.value for s in OPEN_HANDLING]
        ms = []
        for i in range(runs):
            f = case_store.CaseFilter(unit=streets[i % len(streets)], status=handling, light="red")
            ms.append(timed(lambda f=f: case_store.list_cases(session, f, rules))[0])
        out["list p50/p95 ms"] = f"{stats.median(ms):.0f} / {p95(ms):.0f}"
        year = [
            timed(lambda: statistics(session, COUNTY, END - timedelta(days=365), END))[0] for _ in range(3)
        ]
        out["stats county·year ms"] = f"{stats.median(year):.0f}"
        start, stop = month_bounds(month_of(END - timedelta(days=1)))
        month = [timed(lambda: statistics(session, "41", start, stop))[0] for _ in range(3)]
        out["stats province·month ms"] = f"{stats.median(month):.0f}"
        since = BOARD_NOW - timedelta(days=30)  # /stats' default period: both ends inside a day
        default = [timed(lambda: statistics(session, COUNTY, since, BOARD_NOW))[0] for _ in range(3)]
        out["stats county·30 days to 15:00 ms"] = f"{stats.median(default):.0f}"
        board = [timed(lambda: dashboard(session, rules, None, COUNTY, now=BOARD_NOW))[0] for _ in range(3)]
        out["dashboard ms"] = f"{stats.median(board):.0f}"
        out["dashboard parts ms"] = dashboard_parts(session, rules)
    if quick:
        return out
    ms, moved = rolled_back(engine, lambda s: escalate_overdue(s, rules, now=END))
    out["escalation pass ms (moved)"] = f"{ms:.0f} ({moved})"
    out.update(redraw(engine, rules))
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
    return ", ".join(f"{name} {timed(work)[0]:.0f}" for name, work in parts.items())


def rollup_ready(url: str) -> str:
    """Rebuild the roll-up when a load bypassed its triggers; its rows and size, and the rebuild's time."""
    engine = create_engine(url)
    with Session(engine) as session, session.begin():
        rolled, stored = case_rollup.received_total(session)
        ms = 0.0
        if rolled != stored:
            ms, _ = timed(lambda: case_rollup.rebuild(session))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM case_rollup")).scalar()
        size = conn.execute(text("SELECT pg_size_pretty(pg_total_relation_size('case_rollup'))")).scalar()
    engine.dispose()
    rebuilt = f"rebuilt in {ms / 1000:.1f} s" if ms else "kept by the triggers"
    return f"{rows:,} rows, {size}, {rebuilt}"


def redraw(engine, rules) -> dict[str, str]:
    """A redraw of the whole county: find the candidates, assign them again, reassign the moved."""
    with Session(engine) as session:
        grids = codes(session, "grid")
        find_ms, rows = timed(lambda: open_cases_near(session, grids, None))
        sample = rows[:1000]
        locate_ms, _ = timed(
            lambda: [locate(session, r.lon, r.lat, tolerance_m=rules.snap_tolerance_m) for r in sample]
        )
    per = locate_ms / max(1, len(sample))
    following = {g: grids[(i + 1) % len(grids)] for i, g in enumerate(grids)}
    moves = [(r.id, _assignment(following.get(r.grid_code, grids[0]))) for r in rows]
    ms, _ = rolled_back(engine, lambda s: reassign_after_redraw(s, moves, actor="bench", plan_id=0, now=END))
    return {
        "redraw: open cases": f"{len(rows):,}",
        "find ms": f"{find_ms:.0f}",
        "assign again s (extrapolated)": f"{per * len(rows) / 1000:.1f}",
        "reassign s": f"{ms / 1000:.1f}",
    }


def _assignment(code: str) -> Assignment:
    """The answer of the rule for a point of grid `code` (its chain of units from the county down)."""
    chain = [
        UnitRef(code[:n], code[:n], level) for n, level in ((6, "county"), (9, "street"), (12, "community"))
    ]
    return Assignment(Status.ASSIGNED, Rule.COVERS, GridRef(code, code, "urban", 1), 0.0, chain, None)


def machine() -> str:
    """The machine's load, as `uptime` says."""
    load = os.getloadavg()
    return f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores"


def existing(args, settings: Settings) -> str | None:
    """The database to grow or measure, migrated to head (None: make a new one)."""
    if args.url:
        upgrade(args.url)
        return args.url
    return reused(args.name, settings) if args.reuse else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--reuse", action="store_true", help="grow the database an earlier run left")
    parser.add_argument("--name", default=NAME, help="the database's name in the embedded cluster")
    parser.add_argument("--url", help="a database of the demo county loaded otherwise (migrated to head)")
    parser.add_argument("--no-load", action="store_true", help="measure the database as it is")
    parser.add_argument("--quick", action="store_true", help="list, statistics and dashboard only")
    args = parser.parse_args()
    settings = Settings(database_url=None)
    say(f"migrating ({machine()})")
    migrate_ms, url = timed(lambda: existing(args, settings))
    say(f"migrated in {migrate_ms / 1000:.1f} s")
    if url is None:
        url = database(args.name, settings)
        with Session(create_engine(url)) as session, session.begin():
            load_demo(session, settings, progress=say)
    engine = create_engine(url)
    rules = case_store.Rules.load(settings)
    table = []
    for n in [0] if args.no_load else [int(s) for s in args.sizes.split(",")]:
        say(f"loading {n:,} cases ({machine()})")
        load_ms, added = timed(lambda n=n: 0 if args.no_load else load_cases(url, n, end=END))
        with engine.connect() as conn:
            size = conn.execute(text("SELECT pg_size_pretty(pg_database_size(current_database()))")).scalar()
            n = conn.execute(text("SELECT count(*) FROM cases")).scalar()
        row = {"cases": f"{n:,}", "load s": f"{load_ms / 1000:.0f} (+{added:,})", "database": size}
        row["migrate (0019 backfill) s"] = f"{migrate_ms / 1000:.1f}"
        row["roll-up"] = rollup_ready(url)
        row.update(measure(engine, rules, args.runs, args.quick))
        row["machine"] = machine()
        table.append(row)
        for k, v in row.items():
            print(f"{k:>32}  {v}", flush=True)
        print(flush=True)
    engine.dispose()


if __name__ == "__main__":
    main()
