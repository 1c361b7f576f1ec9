"""The demo county, Xiangcheng (411681): real boundary and names, synthetic grids and people.

Loaded through the same import path as any user file, in one transaction. Running it again
changes nothing: unchanged units are recognised, and people are only loaded into an empty county.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.orm import Session

from access.roles import Role
from geo.importer import import_units
from geo.settings import PROJECT_DIR, Settings
from store import people, users

DEMO_DIR = PROJECT_DIR / "data" / "boundaries"
COUNTY_CODE = "411681"
# The demo boundaries are valid from this date, so "as of" queries have a past to look at.
DEMO_VALID_FROM = datetime(2024, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
LAYERS = (
    "xiangcheng_411681_boundary.geojson",
    "xiangcheng_streets.geojson",
    "xiangcheng_communities.geojson",
    "xiangcheng_grids.geojson",
    "xiangcheng_micro_grids.geojson",
)
STAFF_FILE = "xiangcheng_staff.csv"
PARTY_FILE = "xiangcheng_party_cells.csv"


@dataclass
class DemoSummary:
    """What loading the demo did."""

    created: int = 0
    versioned: int = 0
    unchanged: int = 0
    staff: int = 0
    party_cells: int = 0
    users: int = 0
    seconds: float = 0.0


# Demo users, one per role (README lists them). Demo only: a real service creates its users with
# `gridmap user add`, and refuses to start without a secret key outside demo mode.
DEMO_PASSWORD = "gridmap-demo"
DEMO_USERS = [
    ("admin", Role.ADMIN, "411681", None),
    ("planner", Role.PLANNER, "411681", None),
    ("dispatcher", Role.DISPATCHER, "411681", None),
    ("street.dispatcher", Role.DISPATCHER, "411681001", None),  # 花园街道 only
    ("field.worker", Role.FIELD_WORKER, "411681001001001", None),
    ("department", Role.DEPARTMENT, "411681", "cgj"),  # 城市管理局
    ("viewer", Role.VIEWER, "411681", None),
]


def load_demo(
    session: Session,
    settings: Settings,
    *,
    data_dir: Path = DEMO_DIR,
    progress: Callable[[str], None] = print,
) -> DemoSummary:
    """Load (or confirm) the demo county; the caller commits."""
    started = time.perf_counter()
    summary = DemoSummary()
    for name in LAYERS:
        t0 = time.perf_counter()
        result = import_units(session, data_dir / name, valid_from=DEMO_VALID_FROM, settings=settings)
        summary.created += len(result.summary.created)
        summary.versioned += len(result.summary.versioned)
        summary.unchanged += len(result.summary.unchanged)
        progress(
            f"  {name}: {result.features} units ({len(result.summary.created)} new, "
            f"{len(result.summary.unchanged)} unchanged) in {time.perf_counter() - t0:.1f} s"
        )
    if _has_people(session):
        progress("  staff and party cells already loaded")
    else:
        summary.staff = people.add_staff(session, _read_csv(data_dir / STAFF_FILE))
        summary.party_cells = people.add_party_cells(session, _read_csv(data_dir / PARTY_FILE))
        progress(f"  {summary.staff} staff, {summary.party_cells} party cells")
    summary.seconds = time.perf_counter() - started
    summary.users = _add_demo_users(session)
    return summary


def _add_demo_users(session: Session) -> int:
    """The demo users that do not exist yet."""
    existing = set(session.execute(text("SELECT username FROM users")).scalars())
    missing = [u for u in DEMO_USERS if u[0] not in existing]
    for name, role, unit, department in missing:
        users.add_user(session, name, DEMO_PASSWORD, role, unit, department)
    return len(missing)


def _has_people(session: Session) -> bool:
    return session.execute(
        text("SELECT EXISTS (SELECT 1 FROM staff WHERE unit_code LIKE :p)"), {"p": COUNTY_CODE + "%"}
    ).scalar_one()


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))
