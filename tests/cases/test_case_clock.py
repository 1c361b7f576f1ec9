"""Stage clocks of stored cases on the working calendar: a holiday and a make-up working day."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from cases.lifecycle import CaseStatus, Move
from cases.model import Intake
from services import cases as case_service
from services import intake as intake_service
from store import cases as store
from store.cases import Rules
from tests import factories as f

BEIJING = ZoneInfo("Asia/Shanghai")
INSIDE = (f.X0 + 0.01, f.Y0 + 0.03)


@pytest.fixture
def rules(settings):
    return Rules.load(settings)


def new_case(session, rules, now: datetime, *, urgent: bool = False) -> int:
    intake = Intake(*INSIDE, "wgs84", *INSIDE, 5.0, "report", "0101", "暴露垃圾", urgent=urgent)
    case_id, _ = intake_service.create_case(session, intake, rules, actor="test", now=now)
    return case_id


def clock(session, rules, case_id: int, now: datetime) -> dict:
    return store.case_detail(session, case_id, rules, now=now)


def test_verification_due_skips_the_national_day_holiday(session, county, rules):
    reported = datetime(2025, 9, 30, 17, 0, tzinfo=BEIJING)  # 30 working minutes left that day
    case_id = new_case(session, rules, reported)
    case = clock(session, rules, case_id, reported)
    assert case["stage"] == "verify"  # 1 working hour: Oct 1-8 are holidays
    assert case["stage_due_at"] == datetime(2025, 10, 9, 9, 0, tzinfo=BEIJING)
    assert case["stage_yellow_at"] == datetime(2025, 10, 9, 8, 48, tzinfo=BEIJING)  # 80 % of 60 min
    assert clock(session, rules, case_id, datetime(2025, 10, 5, 12, 0, tzinfo=BEIJING))["light"] == "green"
    assert clock(session, rules, case_id, datetime(2025, 10, 9, 8, 50, tzinfo=BEIJING))["light"] == "yellow"
    late = clock(session, rules, case_id, datetime(2025, 10, 9, 9, 1, tzinfo=BEIJING))
    assert (late["light"], late["overdue"]) == ("red", True)


def test_handling_due_falls_on_a_make_up_saturday(session, county, rules):
    start = datetime(2025, 10, 10, 10, 0, tzinfo=BEIJING)  # Friday
    case_id = new_case(session, rules, start)
    for to in ("verified", "filed", "dispatched", "accepted"):
        case_service.move_case(session, case_id, Move(CaseStatus(to)), rules, actor="test", now=start)
    case = clock(session, rules, case_id, start)
    # 1 working day = 7 h: 5.5 h left on Friday, then 1.5 h on Saturday 11 October (调休上班).
    assert case["stage"] == "handle"
    assert case["stage_due_at"] == datetime(2025, 10, 11, 10, 0, tzinfo=BEIJING)


def test_urgent_cases_count_on_the_clock(session, county, rules):
    reported = datetime(2025, 9, 30, 17, 0, tzinfo=BEIJING)
    case = clock(session, rules, new_case(session, rules, reported, urgent=True), reported)
    assert case["stage_due_at"] == datetime(2025, 9, 30, 18, 0, tzinfo=BEIJING)


def test_late_moves_are_recorded_as_late(session, county, rules):
    reported = datetime(2025, 9, 29, 9, 0, tzinfo=BEIJING)
    case_id = new_case(session, rules, reported)
    case_service.move_case(session, case_id, Move(CaseStatus.VERIFIED), rules, actor="test",
                     now=datetime(2025, 9, 29, 11, 0, tzinfo=BEIJING))  # fmt: skip
    history = clock(session, rules, case_id, reported)["history"]
    assert (history[-1]["stage"], history[-1]["on_time"]) == ("verify", False)
