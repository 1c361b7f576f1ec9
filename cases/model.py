"""Cases outside the database: what an intake carries, stage clocks, numbers and the reporter's privacy.

The lifecycle itself (statuses, allowed moves, tiers) is cases.lifecycle; time arithmetic on the
working calendar is cases.worktime; the category table and its time limits are cases.categories.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cases.categories import Category
from cases.lifecycle import STAGE_OF, CaseStatus, Source
from cases.photos import Photo
from cases.worktime import SHANGHAI, YELLOW_FROM, Light, TimeLimit, WorkCalendar


@dataclass(frozen=True)
class Reporter:
    """Who reported: personal data, never shown in full without entitlement, never when confidential."""

    name: str | None = None
    phone: str | None = None
    confidential: bool = False


@dataclass(frozen=True)
class PhotoUpload:
    """A checked photo and its bytes, ready to store."""

    photo: Photo
    data: bytes

    @functools.cached_property
    def sha256(self) -> str:
        """Content digest (for idempotency checks and deduplication)."""
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class Intake:
    """A new case as received, location already in storage lon/lat (EPSG:4490)."""

    lon: float
    lat: float
    input_crs: str
    input_lon: float | None
    input_lat: float | None
    accuracy_m: float | None
    location_source: str  # "report" or "photo_exif"
    category: str
    description: str
    source: Source = Source.PATROL
    address: str | None = None
    urgent: bool = False
    reporter: Reporter | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    photos: list[PhotoUpload] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)  # noted in the first history entry
    location_method: str | None = None  # how the reporter placed the point: gps, pin (moved), photo


# Idempotency keys are the caller's own: a key is stored as a UUID derived from it and the caller
# (a user's id, or "public" for anonymous reports), so nobody else's retry can find its case.
KEY_NAMESPACE = uuid.UUID("6f0d4b52-2f43-4a57-9a35-3c1f7f2f8d11")


def scoped_key(key: str | None, caller_id: int | None) -> str | None:
    """The key as stored: unique to the caller (a signed-in user's id; None = anonymous reports)."""
    if key is None:
        return None
    owner = "public" if caller_id is None else f"user:{caller_id}"
    return str(uuid.uuid5(KEY_NAMESPACE, f"{owner}:{key}"))


def load_departments(path: Path) -> dict[str, str]:
    """The county departments a street may summon: code → name (data/departments.csv)."""
    with open(path, encoding="utf-8", newline="") as f:
        return {row["code"]: row["name"] for row in csv.DictReader(f)}


def case_number(case_id: int, reported_at: datetime) -> str:
    """The human-readable number: local report date and a serial, e.g. 20261122-000042."""
    return f"{reported_at.astimezone(SHANGHAI):%Y%m%d}-{case_id:06d}"


def _mask_name(name: str) -> str:
    return name[0] + "*" * max(len(name) - 1, 1) if name else name


SHORT_PHONE = 7  # digits; a shorter number (an extension, 110) shows none of them


def mask_phone(phone: str) -> str:
    """A phone number with at least half of its digits hidden, whatever its length.

    The digits alone count (spaces, + and - are dropped); at most the first 3 and the last 2
    show, and only as many as leave half hidden: 13812345678 → 138******78, 12345678 → 12****78.
    """
    digits = "".join(c for c in phone if c.isdigit())
    shown = len(digits) // 2 if len(digits) >= SHORT_PHONE else 0
    tail = min(2, shown // 2)
    head = min(3, shown - tail)
    return digits[:head] + "*" * (len(digits) - head - tail) + (digits[-tail:] if tail else "")


def reporter_view(reporter: dict[str, Any] | None, *, entitled: bool = False) -> dict[str, Any] | None:
    """The reporter as a response may show it: masked unless entitled, hidden when confidential."""
    if not reporter:
        return None
    if reporter.get("confidential"):
        return {"name": "***", "phone": "***", "confidential": True}
    name, phone = reporter.get("name"), reporter.get("phone")
    if not entitled:
        name = _mask_name(name) if name else name
        phone = mask_phone(phone) if phone else phone
    return {"name": name, "phone": phone, "confidential": False}


@dataclass(frozen=True)
class StageClock:
    """The clock of the stage a case is in: when it started, turns yellow and is due."""

    stage: str | None
    started_at: datetime | None = None
    yellow_at: datetime | None = None
    due_at: datetime | None = None

    def light(self, now: datetime) -> Light | None:
        """The traffic light at `now` (None when no clock runs)."""
        if self.due_at is None or self.yellow_at is None:
            return None
        if now < self.yellow_at:
            return Light.GREEN
        return Light.YELLOW if now <= self.due_at else Light.RED


def stage_clock(
    status: CaseStatus, category: Category, *, urgent: bool, start: datetime, calendar: WorkCalendar
) -> StageClock:
    """The clock that starts when a case enters `status` (urgent cases count on the clock, 24/7)."""
    stage = STAGE_OF.get(status)
    if stage is None:
        return StageClock(None)
    limit = category.limits[stage]
    return _clock(stage, start, limit, urgent=urgent, calendar=calendar)


def extended_clock(
    clock: StageClock, extend_by: TimeLimit, *, urgent: bool, calendar: WorkCalendar
) -> StageClock:
    """The same stage with its due time pushed back by `extend_by` (延期)."""
    if clock.stage is None or clock.started_at is None or clock.due_at is None:
        return clock
    due = calendar.due(clock.due_at, extend_by, clock=urgent)
    total = (
        (due - clock.started_at).total_seconds()
        if urgent
        else calendar.working_seconds(clock.started_at, due)
    )
    yellow = calendar.due(
        clock.started_at, TimeLimit(YELLOW_FROM * total / 3600, "working_hours"), clock=urgent
    )
    return StageClock(clock.stage, clock.started_at, yellow, due)


def _clock(
    stage: str, start: datetime, limit: TimeLimit, *, urgent: bool, calendar: WorkCalendar
) -> StageClock:
    yellow_limit = TimeLimit(limit.amount * YELLOW_FROM, limit.unit)
    return StageClock(
        stage,
        start,
        calendar.due(start, yellow_limit, clock=urgent),
        calendar.due(start, limit, clock=urgent),
    )
