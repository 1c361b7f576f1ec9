"""The demo county, Xiangcheng (411681): real boundary and names, synthetic grids and people.

What the demo is: its files, dates and users. services.imports.load_demo loads it through the same
import path as any user file, in one transaction. Running it again changes nothing: unchanged units
are recognised, and people are only loaded into an empty county.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from access.roles import Role
from geo.settings import PROJECT_DIR

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


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of one of the demo's CSV files (staff, party cells)."""
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))
