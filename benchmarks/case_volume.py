"""A year of cases, generated deterministically over the demo county's grids and loaded with COPY
(issue 19 §2: 100,000 / 1 M / 10 M cases).

    .venv/bin/python -m benchmarks.case_volume DATABASE_URL N [--end 2026-12-01] [--seed 19]

Cases come in chunks of CHUNK, chunk k drawn from its own generator (seed, k): the first N cases
are the same whatever was loaded before, so a database grows from 100,000 to 1 M to 10 M by
loading the chunks it lacks (load_cases(url, n) loads up to n). Reported uniformly over the year
before --end (Beijing time); a case older than a month is closed (or voided) but for 3 %, newer
ones are half open, in every status of the workflow with its stage clock (the old ones overdue).
Each case has its history: the report, the close (a stage done, on time or not, at a tier) and,
for two closed cases in five, the revisit with its rating. Rows go in with COPY, the triggers off
(session_replication_role = replica: no live-feed event per generated case, and no foreign-key
check of rows made consistent here; needs a superuser, as the embedded cluster's owner is).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from cases.partitions import month_bounds, month_of, months_from
from services.case_partitions import ensure_month

CHUNK = 100_000
CATEGORIES = np.array(["0101", "0101", "0102", "0103", "0201", "0301", "0401", "0501", "0801", "1101"])
SOURCES = np.array(["patrol", "patrol", "citizen", "hotline"])
OPEN = np.array(["reported", "verified", "filed", "dispatched", "accepted", "in_progress", "handled"])
STAGE_OF_OPEN = np.array(["verify", "file", "dispatch", "accept", "handle", "handle", "check"])
TIERS = np.array(["grid"] * 7 + ["community", "street", "department"])
RATINGS = np.array(["satisfied", "satisfied", "basically_satisfied", "unsatisfied"])
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


def grids(conn: psycopg.Connection) -> pd.DataFrame:
    """The current grids: code, version and a point inside each."""
    rows = conn.execute(
        """SELECT v.code, v.version, ST_X(p) AS lon, ST_Y(p) AS lat
           FROM unit_versions v JOIN units u USING (code), ST_PointOnSurface(v.geom) p
           WHERE u.level = 'grid' AND v.valid_to IS NULL ORDER BY v.code"""
    ).fetchall()
    return pd.DataFrame(rows, columns=["code", "version", "lon", "lat"])


def chunk(
    k: int, first_id: int, end: datetime, grid: pd.DataFrame, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Chunk k: CHUNK cases (ids from first_id) and their history rows."""
    rng = np.random.default_rng([seed, k])
    n = CHUNK
    ids = np.arange(first_id, first_id + n)
    g = grid.iloc[rng.integers(0, len(grid), n)].reset_index(drop=True)
    end_s = end.timestamp()
    reported = end_s - rng.random(n) * YEAR_S
    age = end_s - reported
    closed_after = rng.exponential(30 * 3600, n) + 600
    open_share = np.where(age > 30 * 86400, 0.03, 0.5)
    finished = (rng.random(n) >= open_share) & (reported + closed_after < end_s)
    voided = finished & (rng.random(n) < 0.05)
    revisited = finished & ~voided & (rng.random(n) < 0.4)
    tier = TIERS[rng.integers(0, len(TIERS), n)]
    unit = np.where(tier == "grid", g.code, np.where(tier == "community", g.code.str[:12], g.code.str[:9]))
    unit = np.where(tier == "department", g.code.str[:6], unit)
    open_i = rng.integers(0, len(OPEN), n)
    status = np.where(
        voided, "voided", np.where(revisited, "revisited", np.where(finished, "closed", OPEN[open_i]))
    )
    started = reported + rng.random(n) * np.minimum(age, 86400) * 0.5
    due = started + rng.choice([1, 2, 3, 5], n) * 86400
    yellow = due - (due - started) * 0.2
    times = lambda s: pd.to_datetime(s, unit="s", utc=True)  # noqa: E731
    closed_at = np.where(finished, reported + closed_after, np.nan)
    jitter = (rng.random((n, 2)) - 0.5) * 0.0005
    lon, lat = g.lon.to_numpy() + jitter[:, 0], g.lat.to_numpy() + jitter[:, 1]
    stamp = times(reported)
    cases = pd.DataFrame({
        "id": ids,
        "number": stamp.tz_convert("Asia/Shanghai").strftime("%Y%m%d") + "-" + pd.Series(ids).astype(str),
        "source": SOURCES[rng.integers(0, len(SOURCES), n)],
        "category": CATEGORIES[rng.integers(0, len(CATEGORIES), n)],
        "description": "合成案件 synthetic case",
        "urgent": rng.random(n) < 0.05,
        "geom": [f"SRID=4490;POINT({x:.7f} {y:.7f})" for x, y in zip(lon, lat, strict=True)],
        "input_crs": "cgcs2000", "input_lon": lon.round(7), "input_lat": lat.round(7), "accuracy_m": 10.0,
        "location_source": "report", "assign_status": "assigned", "assign_rule": "covers",
        "grid_code": g.code, "grid_version": g.version, "distance_m": 0.0, "assignment": "{}",
        "tier": tier, "unit_code": unit, "department": np.where(tier == "department", "cgj", None),
        "status": status,
        "stage": np.where(finished, None, STAGE_OF_OPEN[open_i]),
        "stage_started_at": np.where(finished, None, times(started).astype(str)),
        "stage_yellow_at": np.where(finished, None, times(yellow).astype(str)),
        "stage_due_at": np.where(finished, None, times(due).astype(str)),
        "rating": np.where(revisited, RATINGS[rng.integers(0, len(RATINGS), n)], None),
        "reported_at": stamp.astype(str),
        "updated_at": times(np.where(finished, closed_at, started)).astype(str),
        "closed_at": np.where(finished & ~voided, times(closed_at).astype(str), None),
    })  # fmt: skip
    return cases, _history(cases, rng, finished & ~voided, revisited)


def _history(
    cases: pd.DataFrame, rng: np.random.Generator, closed: np.ndarray, revisited: np.ndarray
) -> pd.DataFrame:
    """Each case's report, its close (the stage done, on time in nine of ten) and its revisit."""
    report = pd.DataFrame({
        "case_id": cases.id, "at": cases.reported_at, "actor": "bench", "action": "report",
        "from_status": None, "to_status": "reported", "note": "synthetic", "details": "{}", "stage": None,
        "on_time": None, "tier": cases.tier, "unit_code": cases.unit_code,
    })  # fmt: skip
    c = cases[closed]
    close = pd.DataFrame({
        "case_id": c.id, "at": c.closed_at, "actor": "bench", "action": "close", "from_status": "checked",
        "to_status": "closed", "note": None, "details": "{}", "stage": "close",
        "on_time": rng.random(len(c)) < 0.9, "tier": c.tier, "unit_code": c.unit_code,
    })  # fmt: skip
    r = cases[revisited]
    revisit = pd.DataFrame({
        "case_id": r.id, "at": r.closed_at, "actor": "bench", "action": "revisited", "from_status": "closed",
        "to_status": "revisited", "note": None, "details": [json.dumps({"rating": x}) for x in r.rating],
        "stage": "revisit", "on_time": True, "tier": r.tier, "unit_code": r.unit_code,
    })  # fmt: skip
    return pd.concat([report, close, revisit], ignore_index=True)


def _copy(conn: psycopg.Connection, table: str, columns: str, frame: pd.DataFrame) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, header=False, index=False, na_rep="")
    with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)") as copy:
        copy.write(buffer.getvalue())


def loaded(conn: psycopg.Connection) -> int:
    """How many generated cases the database holds."""
    return conn.execute("SELECT count(*) FROM case_ids WHERE id >= 1000000000").fetchone()[0]


FIRST_ID = 1_000_000_000  # generated cases' ids start here: intake's own ids stay below


def load_cases(url: str, n: int, *, end: datetime, seed: int = 19) -> int:
    """Load generated cases until the database holds the first `n` (a multiple of CHUNK): how many
    were added."""
    engine = create_engine(url)
    with Session(engine) as session, session.begin():  # the year's partitions, as the service makes them
        for month in months_from(month_of(end - timedelta(days=366)), 14):
            ensure_month(session, month_bounds(month)[0])
    raw = engine.raw_connection()
    conn = raw.driver_connection
    grid = grids(conn)
    have = loaded(conn)
    conn.execute("SET session_replication_role = replica")
    for k in range(have // CHUNK, n // CHUNK):
        cases, history = chunk(k, FIRST_ID + k * CHUNK, end, grid, seed)
        _copy(conn, "case_ids", "id", cases[["id"]])
        _copy(conn, "cases", CASE_COLUMNS, cases[[c.strip() for c in CASE_COLUMNS.split(",")]])
        _copy(conn, "case_history", HISTORY_COLUMNS, history)
        conn.commit()
        say(f"  {(k + 1) * CHUNK:,} cases loaded")
    conn.execute("SET session_replication_role = origin")
    conn.execute("ANALYZE cases")
    conn.execute("ANALYZE case_history")
    conn.execute("ANALYZE case_ids")
    conn.commit()
    raw.close()
    engine.dispose()
    return max(0, n - have)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url")
    parser.add_argument("n", type=int)
    parser.add_argument("--end", default="2026-12-01", help="the year ends here (Beijing time)")
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()
    end = datetime.fromisoformat(args.end).replace(tzinfo=UTC) - timedelta(hours=8)
    load_cases(args.url, args.n, end=end, seed=args.seed)


if __name__ == "__main__":
    main()
