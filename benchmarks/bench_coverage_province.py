"""Coverage of a stored province (issue 19 §2: ≤ 60 s and ≤ 4 GB; after a publish, ≤ 2 s for the
changed units), run from benchmarks/bench_coverage.py `--database URL`.

Each full run is made in a process of its own, so that its peak resident set is its own (GEOS
allocates outside Python): `services.coverage.coverage_of` on the province, as `gridmap coverage
--unit 41` and `GET /coverage?unit=41` run it (its regions, then one county at a time), and with
`--whole` `store.coverage.run_coverage`, the whole subtree loaded and analysed at once (the shape
of the run before issue 19). Then, in one transaction that is rolled back at the end (the database
is left as it was): the province's report is saved, a plan splitting one grid of a community is
published, and the refresh of the reports above it is timed (services.coverage_refresh): the
changed groups analysed again, then merged into the stored report (a new report of its chain: the
fresh findings stored, the replaced ones retired, the rest kept where they are). `refresh_stored`
(`--refresh-only`) does the refresh alone from the province's stored report, with the time to read
that report and the refreshed one. The machine's load and how busy it was are printed with the figures.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import time
from collections import Counter
from typing import Any

from shapely.geometry import LineString
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from benchmarks.bench_intake import cpu_times, machine_share
from geo.coverage import Tolerances
from geo.plans import Edit, Operation
from geo.settings import Settings
from store import coverage_groups


def _load() -> str:
    """The load averages (1, 5, 15 min) and the cores."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} cores"


def _full_run(url: str, code: str, whole: bool, out: Any) -> None:
    """In a child process: one full run of `code`; its figures through the pipe `out`."""
    from services.coverage import coverage_of
    from store.coverage import run_coverage

    tol = Tolerances.from_settings(Settings(database_url=url))
    engine = create_engine(url)
    with Session(engine) as session:
        t0, c0 = time.perf_counter(), time.process_time()
        run = run_coverage(session, code, tol) if whole else coverage_of(session, code, tol)
        took, cpu = time.perf_counter() - t0, time.process_time() - c0
    out.send(
        {
            "took": took,
            "cpu": cpu,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "timings": run.timings,
            "counts": dict(sorted(Counter(f.kind.value for f in run.findings).items())),
        }
    )


def full_run(url: str, code: str, *, whole: bool = False) -> dict[str, Any]:
    """A full run of `code` in a fresh process: wall and CPU seconds, peak RSS, timings, counts."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_full_run, args=(url, code, whole, send))
    child.start()
    figures = receive.recv()
    child.join()
    return figures


def _say_full(label: str, figures: dict[str, Any], machine: str) -> None:
    timings = ", ".join(f"{k} {v:.1f}" for k, v in figures["timings"].items())
    print(
        f"{label}: {figures['took']:.1f} s wall, {figures['cpu']:.1f} s CPU in Python ({timings}); "
        f"peak RSS {figures['peak_mb']:,.0f} MB; findings {figures['counts']}\n  [{machine}]",
        flush=True,
    )


def _grid_to_split(session: Session, code: str) -> str:
    """A grid without micro-grids in the middle of the province (deterministic)."""
    return session.execute(
        text(
            """SELECT v.code FROM unit_versions v JOIN units u USING (code)
               WHERE u.level = 'grid' AND v.valid_to IS NULL AND v.kind <> 'special' AND v.code LIKE :p
                 AND NOT EXISTS (SELECT 1 FROM units m WHERE m.parent_code = v.code)
               ORDER BY v.code OFFSET (SELECT count(*) / 2 FROM units WHERE level = 'grid') LIMIT 1"""
        ),
        {"p": code + "%"},
    ).scalar_one()


def _publish_a_split(session: Session, code: str, settings: Settings) -> int:
    """Publish a plan splitting one grid in the middle of the province; the plan's id."""
    from services import plan_publish, plans
    from store.coverage import load_units

    grid = _grid_to_split(session, code)
    [unit] = load_units(session, grid, "v.code = :c", {"c": grid})
    x0, y0, x1, y1 = unit.geometry.bounds
    cut = LineString([((x0 + x1) / 2, y0 - 0.001), ((x0 + x1) / 2, y1 + 0.001)])
    plan = plans.open_plan(session, grid[:12], "bench: split a grid", author="bench")
    plans.add_edit(session, plan, Edit(Operation.SPLIT, {"code": grid}, cut), author="bench")
    t1 = time.perf_counter()
    published = plan_publish.publish(session, plan, settings, actor="bench")
    print(f"  published plan {plan} (split {grid}: created {published['created']}) in "
          f"{time.perf_counter() - t1:.1f} s (not part of the refresh)", flush=True)  # fmt: skip
    return plan


def _timed_refresh(session: Session, plan: int, tol: Tolerances) -> list[Any]:
    """The refresh after `plan`, timed and printed per report; the refreshed reports."""
    from services import coverage_refresh

    before = cpu_times()
    t2, c2 = time.perf_counter(), time.process_time()
    done = coverage_refresh.refresh_after_publish(session, plan, tol)
    took, cpu = time.perf_counter() - t2, time.process_time() - c2
    machine = machine_share(before, cpu_times())
    for r in done:
        timings = ", ".join(f"{k} {v:.3f}" for k, v in r.timings.items())
        new = sum(bool(f.new) for f in r.findings)
        print(
            f"  report of {r.unit}: {len(r.groups)} group(s) {r.groups} analysed again ({timings}); "
            f"{r.replaced} finding(s) replaced by {len(r.findings)}, {new} new, {len(r.resolved)} gone"
        )
    print(
        f"refresh after a publish of one community's redraw: {took:.2f} s wall, {cpu:.2f} s CPU in "
        f"Python for {len(done)} report(s) (target 2 s)\n  [{_load()}; {machine}]",
        flush=True,
    )
    return done


def _findings_sql(session: Session) -> str:
    """The SQL that reads a report's findings (bind :id); in a database before migration 0023 (a
    before/after run from an older checkout) the report's own rows, as that store read them."""
    chained = session.execute(
        text(
            """SELECT 1 FROM information_schema.columns
               WHERE table_name = 'coverage_reports' AND column_name = 'base_report_id'"""
        )
    ).first()
    if not chained:
        return "SELECT id, geom FROM coverage_findings WHERE report_id = :id ORDER BY id"
    from store.coverage_chain import findings_of

    return f"SELECT id, geom FROM {findings_of(':id', ':chain')} AS f ORDER BY id"


def read_report(session: Session, report_id: int, label: str, *, rows: bool = True) -> None:
    """Time reading a stored report's findings: the SQL alone (ids and shapes fetched), then with
    `rows` as the comparison and the next run read them (store.coverage.report_findings: SQL and
    row mapping) and as GeoJSON (what the API answers)."""
    from geo.coverage import feature_collection
    from store.coverage import report_findings

    sql = _findings_sql(session)
    t0 = time.perf_counter()
    binds: dict[str, Any] = {"id": report_id}
    if ":chain" in sql:
        from store.coverage_chain import params_of

        binds = params_of(session, report_id, "id", "chain")
    fetched = session.execute(text(sql), binds).all()
    took = time.perf_counter() - t0
    said = f"  read {label} report {report_id}: {len(fetched):,} findings, SQL {took:.2f} s"
    if rows:
        t1 = time.perf_counter()
        findings = report_findings(session, report_id)
        t2 = time.perf_counter()
        feature_collection(findings)
        said += f"; with rows {t2 - t1:.2f} s, GeoJSON {time.perf_counter() - t2:.2f} s more"
    print(f"{said} [{_load()}]", flush=True)


def refresh_after_publish(url: str, code: str) -> None:
    """Save the province's report, publish one community's redraw, time the refresh; roll back."""
    from services.coverage import coverage_of

    settings = Settings(database_url=url)
    tol = Tolerances.from_settings(settings)
    engine = create_engine(url)
    with Session(engine) as session, session.begin():
        t0 = time.perf_counter()
        saved = coverage_of(session, code, tol, save=True, actor="bench")
        print(f"  saved the province's report {saved.report_id} ({len(saved.findings):,} findings) "
              f"in {time.perf_counter() - t0:.1f} s (run and save)", flush=True)  # fmt: skip
        _timed_refresh(session, _publish_a_split(session, code, settings), tol)
        session.rollback()


def refresh_stored(url: str, code: str) -> None:
    """The refresh after a publish from the province's latest stored report (no full run): read
    that report, publish one grid's split, time the refresh, read the new report; roll back."""
    settings = Settings(database_url=url)
    tol = Tolerances.from_settings(settings)
    engine = create_engine(url)
    print(f"province {code} in {url.rsplit('/', 1)[-1]}, from its stored report; {_load()}")
    with Session(engine) as session, session.begin():
        latest = coverage_groups.latest_reports(session, [code])  # what the refresh itself grows from
        stored = latest[0][1] if latest else None
        if stored is None:
            raise SystemExit(f"no stored report of {code}: run `gridmap coverage --unit {code} --save` first")
        read_report(session, stored, "the stored")
        read_report(session, stored, "the stored (again, warm)", rows=False)
        done = _timed_refresh(session, _publish_a_split(session, code, settings), tol)
        for r in done:
            if r.unit == code:
                read_report(session, r.report_id, "the refreshed", rows=False)
                read_report(session, r.report_id, "the refreshed")
        read_report(session, stored, "the stored, after the refresh", rows=False)
        session.rollback()


def bench_province(url: str, code: str, *, whole: bool = False) -> None:
    """The figures of the province: full runs, then the refresh after a publish."""
    print(f"province {code} in {url.rsplit('/', 1)[-1]}; {_load()} (a busy machine slows every figure)")
    before = cpu_times()
    figures = full_run(url, code)
    _say_full(
        f"province {code}, one county at a time (target 60 s, 4 GB)",
        figures,
        _load() + "; " + machine_share(before, cpu_times()),
    )
    if whole:
        before = cpu_times()
        figures = full_run(url, code, whole=True)
        _say_full(
            f"province {code}, whole subtree at once",
            figures,
            _load() + "; " + machine_share(before, cpu_times()),
        )
    refresh_after_publish(url, code)
