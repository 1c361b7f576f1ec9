"""Cases at volume (issue 19 §2): the dispatcher's list, statistics, the dashboard, an escalation
pass and a county's redraw reassignment at 100,000 / 1 M / 10 M cases over a year.

    .venv/bin/python -m benchmarks.bench_cases [--sizes 100000,1000000,10000000] [--runs 20] [--reuse]
                                               [--database NAME --county CODE]

A database of its own (`gridmap_bench_cases`, the demo county loaded), grown size by size with
benchmarks.case_volume (COPY; load time printed); --reuse grows the one an earlier run left (drop
it when done: it takes ~1.3 GB a million cases). Each figure is the server's own work: the
function the route calls, run in this process on one session (no HTTP, no JSON encoding) of a
connection made as the service makes them (store.engine.SERVICE_CONNECT_ARGS: generic plans):
  list      GET /cases?unit=<street>&status=<in handling>&light=red, each street in turn (p50/p95)
  stats     GET /stats for the county over the year, and for the province (41) over the last month
  dashboard GET /stats/dashboard?unit=411681 (every figure of the first view)
  escalate  one pass of `gridmap escalate` (500 overdue cases at most), rolled back
  redraw    every open case of the county moved to another grid (services.case_redraw), rolled back;
            before it, the publish finds the candidates (store.plan_publish.open_cases_near over the
            county's grids) and assigns each again (store.locate: timed on 1,000 and extrapolated).
With --database, a database already holding grids (e.g. the synthetic province of
benchmarks.province, 400,000 grids) is used as it is, grown to each size with cases over all its
grids, and --county names the county measured (the province is its first two digits).
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
from cases.lifecycle import OPEN_HANDLING
from cases.partitions import month_bounds, month_of
from cases.worktime import SHANGHAI
from geo.assignment import Assignment, GridRef, Rule, Status, UnitRef
from geo.settings import Settings
from services import case_reads
from services.case_redraw import reassign_after_redraw
from services.dashboard import dashboard
from services.escalation import escalate_overdue
from services.imports import load_demo
from store import cases as case_store
from store.case_stats import statistics
from store.engine import SERVICE_CONNECT_ARGS
from store.locate import locate
from store.plan_publish import open_cases_near

NAME = "gridmap_bench_cases"
COUNTY = "411681"
END = datetime(2026, 12, 1, tzinfo=SHANGHAI)  # the generated year ends here


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
    """The codes of the measured county's units of one level."""
    sql = "SELECT code FROM units WHERE level = :level AND code LIKE :c ORDER BY code"
    return list(session.execute(text(sql), {"level": level, "c": COUNTY + "%"}).scalars())


PARTS = ("list", "stats", "dashboard", "escalation", "redraw")


def measure(engine, rules, runs: int, repeat: int = 3, parts: tuple[str, ...] = PARTS) -> dict[str, str]:
    """The figures of `parts` at the database's current size, each printed as it is measured."""
    out: dict[str, str] = {}
    with Session(engine) as session:
        if "list" in parts:
            out.update(_list(session, rules, runs))
        if "stats" in parts:
            year_start = END - timedelta(days=365)
            year = [timed(lambda: statistics(session, COUNTY, year_start, END))[0] for _ in range(repeat)]
            out.update(_said("stats county·year ms", f"{stats.median(year):.0f}"))
            start, stop = month_bounds(month_of(END - timedelta(days=1)))
            month = [timed(lambda: statistics(session, COUNTY[:2], start, stop))[0] for _ in range(repeat)]
            out.update(_said("stats province·month ms", f"{stats.median(month):.0f}"))
        if "dashboard" in parts:
            board = [
                timed(lambda: dashboard(session, rules, None, COUNTY, now=END))[0] for _ in range(repeat)
            ]
            out.update(_said("dashboard ms", f"{stats.median(board):.0f}"))
    if "escalation" in parts:
        passes = [rolled_back(engine, lambda s: escalate_overdue(s, rules, now=END)) for _ in range(repeat)]
        runs_ms = ", ".join(f"{ms:.0f}" for ms, _ in passes)
        out.update(_said("escalation passes ms (moved)", f"{runs_ms} ({passes[0][1]})"))
    if "redraw" in parts:
        for name, value in redraw(engine, rules).items():
            out.update(_said(name, value))
    return out


def _list(session: Session, rules, runs: int) -> dict[str, str]:
    """GET /cases for each street of the county in turn: unit, the statuses in handling, red."""
    streets = codes(session, "street")
    handling = [s.value for s in OPEN_HANDLING]
    ms = []
    for i in range(runs):
        f = case_store.CaseFilter(unit=streets[i % len(streets)], status=handling, light="red")
        ms.append(timed(lambda f=f: case_reads.list_cases(session, f, rules))[0])
    return _said("list p50/p95 ms", f"{stats.median(ms):.0f} / {p95(ms):.0f}")


def _said(name: str, value: str) -> dict[str, str]:
    """A figure, printed at once (on stderr, with the machine's load) and returned."""
    say(f"  {name}: {value} ({machine()})")
    return {name: value}


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


def main() -> None:
    global COUNTY  # the county measured: the demo's, or --county
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each /stats, dashboard, escalation")
    parser.add_argument("--parts", default=",".join(PARTS), help="what to measure (default: all)")
    parser.add_argument("--reuse", action="store_true", help="grow the database an earlier run left")
    parser.add_argument("--database", help="measure this database of the embedded cluster (kept as it is)")
    parser.add_argument("--county", default=COUNTY, help="the county measured (default: the demo's)")
    args = parser.parse_args()
    COUNTY = args.county
    settings = Settings(database_url=None)
    url = reused(args.database or NAME, settings) if args.reuse or args.database else None
    if url is None and args.database:
        raise SystemExit(f"no grids in database {args.database}")
    if url is None:
        url = database(NAME, settings)
        with Session(create_engine(url)) as session, session.begin():
            load_demo(session, settings, progress=say)
    # The service's connections (generic plans, prepared at once), so the figures are the served ones.
    engine = create_engine(url, connect_args=SERVICE_CONNECT_ARGS)
    rules = case_store.Rules.load(settings)
    table = []
    for n in (int(s) for s in args.sizes.split(",")):
        say(f"loading {n:,} cases ({machine()})")
        load_ms, added = timed(lambda n=n: load_cases(url, n, end=END))
        with engine.connect() as conn:
            size = conn.execute(text("SELECT pg_size_pretty(pg_database_size(current_database()))")).scalar()
        row = {"cases": f"{n:,}", "load s": f"{load_ms / 1000:.0f} (+{added:,})", "database": size}
        row.update(measure(engine, rules, args.runs, args.repeat, tuple(args.parts.split(","))))
        row["machine"] = machine()
        table.append(row)
        for k, v in row.items():
            print(f"{k:>32}  {v}", flush=True)
        print(flush=True)
    engine.dispose()


if __name__ == "__main__":
    main()
