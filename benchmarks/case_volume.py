"""A year of cases, generated deterministically over the stored grids (a county, or the synthetic
province's 400,000) and bulk-loaded (issue 19 §2: 100,000 / 1 M / 10 M cases).

    .venv/bin/python -m benchmarks.case_volume DATABASE_URL N [--end 2026-12-01] [--seed 19] [--area CODE]

Cases come in chunks of CHUNK, chunk k drawn from its own generator (seed, k): the first N cases
are the same whatever was loaded before, so a database grows from 100,000 to 1 M to 10 M by
loading the chunks it lacks (load_cases(url, n) loads up to n). Each case is at a point on a grid
drawn uniformly among the grids of --area (every current grid by default), jittered by up to
±0.00025°. Reported uniformly over the year before --end (Beijing time); a case older than a month
is closed (or voided) but for 3 %, newer ones are half open, in every status of the workflow with
its stage clock (the old ones overdue). Each case has its history: the report, the close (a stage
done, on time or not, at a tier) and, for two closed cases in five, the revisit with its rating.

Fast enough for 10 M: a chunk is made in numpy and written as COPY text by benchmarks.copy_text
(no Python per row), the cases go a month at a time into bare staging tables swapped in as the
partitions when all are in (benchmarks.partition_load: indexes built once, in bulk), the history
goes in on a second connection at the same time, without its plain indexes (built after), and the
next chunk is generated while the last is copied. Triggers are off while copying
(session_replication_role = replica: no live-feed event per generated case, no foreign-key check
of rows made consistent here; needs a superuser, as the embedded cluster's owner is); attaching a
month checks its foreign keys once.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import psycopg
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from benchmarks import copy_text as ct
from benchmarks import partition_load as pl
from benchmarks.copy_text import NULL
from cases.partitions import month_bounds, month_of, months_from, partition_name
from services.case_partitions import ensure_month

CHUNK = 100_000
CATEGORIES = np.array(["0101", "0101", "0102", "0103", "0201", "0301", "0401", "0501", "0801", "1101"])
SOURCES = np.array(["patrol", "patrol", "citizen", "hotline"])
OPEN = np.array(["reported", "verified", "filed", "dispatched", "accepted", "in_progress", "handled"])
STAGE_OF_OPEN = np.array(["verify", "file", "dispatch", "accept", "handle", "handle", "check"])
TIERS = np.array(["grid"] * 7 + ["community", "street", "department"])
RATINGS = np.array(["satisfied", "satisfied", "basically_satisfied", "unsatisfied"])
RATING_JSON = np.array([json.dumps({"rating": r}).encode() for r in RATINGS])
DESCRIPTION = "合成案件 synthetic case".encode()
YEAR_S = 365 * 86400
CASE_COLUMNS = (
    "id, number, source, category, description, urgent, geom, input_crs, input_lon, input_lat, "
    "accuracy_m, location_source, assign_status, assign_rule, grid_code, grid_version, distance_m, "
    "assignment, tier, unit_code, department, status, stage, stage_started_at, stage_yellow_at, "
    "stage_due_at, rating, reported_at, updated_at, closed_at"
)
HISTORY_COLUMNS = (
    "case_id, at, actor, action, from_status, to_status, note, details, stage, on_time, tier, unit_code"
)


def say(message: str) -> None:
    """Progress on stderr."""
    print(message, file=sys.stderr, flush=True)


def grids(conn: psycopg.Connection, area: str = "") -> Grids:
    """The current grids of `area` (a unit's code; "" for every stored grid): code, version and a
    point inside each."""
    rows = conn.execute(
        """SELECT v.code, v.version, ST_X(p) AS lon, ST_Y(p) AS lat
           FROM unit_versions v JOIN units u USING (code), ST_PointOnSurface(v.geom) p
           WHERE u.level = 'grid' AND v.valid_to IS NULL AND v.code LIKE %s ORDER BY v.code""",
        (area + "%",),
    ).fetchall()
    if not rows:
        raise SystemExit(f"no grids stored in {area or 'the database'}")
    code, version, lon, lat = zip(*rows, strict=True)
    return Grids(np.array(code, "S18"), np.array(version), np.array(lon), np.array(lat))


@dataclass(frozen=True)
class Grids:
    """The grids cases are drawn over (arrays of one length)."""

    code: np.ndarray  # S18
    version: np.ndarray
    lon: np.ndarray
    lat: np.ndarray


@dataclass
class Chunk:
    """One chunk of generated cases as COPY text: the cases of each month (by partition name),
    their history rows and their ids."""

    cases: dict[str, bytes]
    history: bytes
    ids: bytes
    count: int


def chunk(k: int, first_id: int, end: datetime, grid: Grids, seed: int, n: int = CHUNK) -> Chunk:
    """Chunk k: n cases (ids from first_id) with their history rows, as COPY text (UTC times)."""
    rng = np.random.default_rng([seed, k])
    ids = np.arange(first_id, first_id + n)
    g = rng.integers(0, len(grid.code), n)
    code = grid.code[g]
    end_s = end.timestamp()
    reported = end_s - rng.random(n) * YEAR_S
    age = end_s - reported
    closed_after = rng.exponential(30 * 3600, n) + 600
    open_share = np.where(age > 30 * 86400, 0.03, 0.5)
    finished = (rng.random(n) >= open_share) & (reported + closed_after < end_s)
    voided = finished & (rng.random(n) < 0.05)
    revisited = finished & ~voided & (rng.random(n) < 0.4)
    tier_i = rng.integers(0, len(TIERS), n)
    tier = TIERS[tier_i]
    cut = np.select([tier == "grid", tier == "community", tier == "street"], [18, 12, 9], 6)
    unit = _prefix(code, cut)
    open_i = rng.integers(0, len(OPEN), n)
    status = np.where(
        voided, "voided", np.where(revisited, "revisited", np.where(finished, "closed", OPEN[open_i]))
    ).astype("S")
    started = reported + rng.random(n) * np.minimum(age, 86400) * 0.5
    due = started + rng.choice([1, 2, 3, 5], n) * 86400
    yellow = due - (due - started) * 0.2
    closed_at = np.where(finished, reported + closed_after, reported)
    jitter = (rng.random((n, 2)) - 0.5) * 0.0005
    lon, lat = grid.lon[g] + jitter[:, 0], grid.lat[g] + jitter[:, 1]
    source = SOURCES[rng.integers(0, len(SOURCES), n)].astype("S")
    category = CATEGORIES[rng.integers(0, len(CATEGORIES), n)].astype("S")
    urgent = np.where(rng.random(n) < 0.05, b"t", b"f")
    rating_i = rng.integers(0, len(RATINGS), n)
    on_time = np.where(rng.random(n) < 0.9, b"t", b"f")
    day = np.datetime_as_string((reported + 8 * 3600).astype("int64").astype("datetime64[s]"), unit="D")
    ymd = day.astype("S10").view(np.uint8).reshape(n, 10)[:, [0, 1, 2, 3, 5, 6, 8, 9]]
    id_text = ct.integers(ids)
    head, xy = ct.points_ewkb(lon, lat, 4490)
    columns = [
        id_text, (np.ascontiguousarray(ymd).view("S8").ravel(), b"-", id_text), source, category,
        DESCRIPTION, urgent, (head, xy), b"cgcs2000", ct.decimals(lon, 7), ct.decimals(lat, 7), b"10",
        b"report", b"assigned", b"covers", code, ct.integers(grid.version[g]), b"0", b"{}",
        tier.astype("S"), unit, ct.nullable(b"cgj", tier == "department"), status,
        ct.nullable(STAGE_OF_OPEN[open_i].astype("S"), ~finished),
        ct.nullable(ct.timestamps(started), ~finished), ct.nullable(ct.timestamps(yellow), ~finished),
        ct.nullable(ct.timestamps(due), ~finished),
        ct.nullable(RATINGS[rating_i].astype("S"), revisited), ct.timestamps(reported),
        ct.timestamps(np.where(finished, closed_at, started)),
        ct.nullable(ct.timestamps(closed_at), finished & ~voided),
    ]  # fmt: skip
    history = _history(
        {"n": n, "id_text": id_text, "finished": finished, "voided": voided, "revisited": revisited,
         "tier": tier, "unit": unit, "reported": reported, "closed_at": closed_at, "on_time": on_time,
         "rating_i": rating_i}
    )  # fmt: skip
    return Chunk(_by_month(columns, reported, n), history, ct.rows([id_text], n)[0].tobytes(), n)


def _prefix(code: np.ndarray, cut: np.ndarray) -> np.ndarray:
    """Each code cut to its first `cut` characters (a code's ancestors are its prefixes)."""
    chars = code.view(np.uint8).reshape(len(code), -1).copy()
    chars[np.arange(chars.shape[1]) >= cut[:, None]] = 0
    return chars.view(f"S{chars.shape[1]}").ravel()


def _by_month(columns: list, reported: np.ndarray, n: int) -> dict[str, bytes]:
    """The rows' COPY text split by the partition (Beijing month) of their report time."""
    month = (reported + 8 * 3600).astype("int64").astype("datetime64[s]").astype("datetime64[M]")
    order = np.argsort(month, kind="stable")
    data, lengths = ct.rows([_take(c, order) for c in columns], n)
    ends = np.cumsum(lengths)  # the rows are in `order` already
    months, first = np.unique(month[order], return_index=True)
    bounds = [0, *ends[first[1:] - 1].tolist(), int(ends[-1])]
    return {
        partition_name(date.fromisoformat(f"{m}-01")): data[a:b].tobytes()
        for m, a, b in zip(months, bounds[:-1], bounds[1:], strict=True)
    }


def _take(column, order: np.ndarray):
    """A column (or a field's pieces) in row order `order`."""
    if isinstance(column, tuple):
        return tuple(_take(p, order) for p in column)
    return column if isinstance(column, bytes) else column[order]


def _history(c: dict) -> bytes:
    """Each case's report, its close (the stage done, on time in nine of ten) and its revisit."""
    n, ids, finished, voided, revisited = c["n"], c["id_text"], c["finished"], c["voided"], c["revisited"]
    tier, unit = c["tier"].astype("S"), c["unit"]
    report = ct.rows(
        [ids, ct.timestamps(c["reported"]), b"bench", b"report", NULL, b"reported", b"synthetic", b"{}",
         NULL, NULL, tier, unit], n,
    )[0]  # fmt: skip
    closed = finished & ~voided
    at = ct.timestamps(c["closed_at"][closed])
    close = ct.rows(
        [ids[closed], at, b"bench", b"close", b"checked", b"closed", NULL, b"{}", b"close",
         c["on_time"][closed], tier[closed], unit[closed]], int(closed.sum()),
    )[0]  # fmt: skip
    rating = RATING_JSON[c["rating_i"][revisited]]
    revisit = ct.rows(
        [ids[revisited], ct.timestamps(c["closed_at"][revisited]), b"bench", b"revisited", b"closed",
         b"revisited", NULL, rating, b"revisit", b"t", tier[revisited], unit[revisited]],
        int(revisited.sum()),
    )[0]  # fmt: skip
    return report.tobytes() + close.tobytes() + revisit.tobytes()


def loaded(conn: psycopg.Connection) -> int:
    """How many generated cases the database holds."""
    return conn.execute("SELECT count(*) FROM case_ids WHERE id >= 1000000000").fetchone()[0]


FIRST_ID = 1_000_000_000  # generated cases' ids start here: intake's own ids stay below


def load_cases(
    url: str, n: int, *, end: datetime, seed: int = 19, area: str = "", chunk_size: int = CHUNK
) -> int:
    """Load generated cases until the database holds the first `n` (a multiple of chunk_size)
    over the grids of `area` (every stored grid by default): how many were added."""
    engine = create_engine(url)
    with Session(engine) as session, session.begin():  # the year's partitions, as the service makes them
        for month in months_from(month_of(end - timedelta(days=366)), 14):
            ensure_month(session, month_bounds(month)[0])
    engine.dispose()
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as cases, psycopg.connect(dsn) as history:
        have = loaded(cases)
        todo = range(have // chunk_size, n // chunk_size)
        if not todo:
            return 0
        grid = grids(cases, area)
        say(f"  {len(grid.code):,} grids; chunks {todo.start} to {todo.stop - 1} of {chunk_size:,} cases")
        partitions = [partition_name(m) for m in months_from(month_of(end - timedelta(days=366)), 14)]
        for conn in (cases, history):
            conn.execute("SET TimeZone = 'UTC'")  # the generated times are UTC, without a zone
            conn.execute("SET session_replication_role = replica")  # no trigger, no FK check
        started = time.perf_counter()
        pl.create_staging(cases, partitions)
        history_indexes = pl.drop_history_indexes(history)
        written = _copy_chunks(
            cases, history, todo, lambda k: chunk(k, FIRST_ID + k * chunk_size, end, grid, seed, chunk_size)
        )
        say(f"  copied in {time.perf_counter() - started:.0f} s; building case_history's indexes ...")
        for statement in history_indexes:
            history.execute(statement)
        cases.commit()
        history.commit()
        say(f"  {time.perf_counter() - started:.0f} s; swapping the months in ...")
        cases.autocommit = True
        indexes, columns = pl.parent_indexes(cases), pl.case_columns(cases)
        for partition in partitions:
            if partition in written:
                pl.swap_in(cases, partition, indexes, columns)
            else:  # no generated case in that month: its partition stays as it is
                cases.execute(f"DROP TABLE {pl.STAGING.format(partition)}")
        say(f"  {time.perf_counter() - started:.0f} s; analyzing ...")
        for table in ("cases", "case_history", "case_ids"):
            cases.execute(f"ANALYZE {table}")
        say(f"  loaded in {time.perf_counter() - started:.0f} s")
    return (todo.stop - todo.start) * chunk_size


def _copy_chunks(cases: psycopg.Connection, history: psycopg.Connection, todo: range, make) -> set[str]:
    """Generate chunk after chunk while the previous one is copied (the cases and their ids on one
    connection, the history on the other, each in a thread: PostgreSQL parses both at once): the
    partitions written to."""
    written: set[str] = set()

    def copy_cases(c: Chunk) -> None:
        _copy(cases, "case_ids (id)", c.ids)
        for partition, data in c.cases.items():
            _copy(cases, f"{pl.STAGING.format(partition)} ({CASE_COLUMNS})", data)

    with ThreadPoolExecutor(2) as pool:
        pending: list = []
        for k in todo:
            made = make(k)
            written |= made.cases.keys()
            for done in pending:
                done.result()
            pending = [
                pool.submit(copy_cases, made),
                pool.submit(_copy, history, f"case_history ({HISTORY_COLUMNS})", made.history),
            ]
            say(f"  chunk {k}: {(k + 1) * made.count:,} cases generated")
        for done in pending:
            done.result()
    return written


def _copy(conn: psycopg.Connection, target: str, data: bytes) -> None:
    """COPY text rows into `target` (a table and its columns)."""
    with conn.cursor().copy(f"COPY {target} FROM STDIN") as copy:
        copy.write(data)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url")
    parser.add_argument("n", type=int)
    parser.add_argument("--end", default="2026-12-01", help="the year ends here (Beijing time)")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--area", default="", help="a unit's code: its grids only (default: every grid)")
    args = parser.parse_args()
    end = datetime.fromisoformat(args.end).replace(tzinfo=UTC) - timedelta(hours=8)
    load_cases(args.url, args.n, end=end, seed=args.seed, area=args.area)


if __name__ == "__main__":
    main()
