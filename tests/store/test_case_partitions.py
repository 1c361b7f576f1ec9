"""The cases table's monthly partitions (cases.partitions, services.case_partitions): made ahead
of the clock, made when missing, cases land in their month's partition, lists and statistics are
right across a month boundary, and a month's query reads that month's partition alone."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from api.app import create_app, partitions_once
from cases.model import Intake
from cases.partitions import MONTHS_AHEAD, month_bounds, month_of, months_from, partition_name
from cases.rules import Rules
from services.case_partitions import ensure_partitions
from services.intake import create_case
from store.case_filters import CaseFilter, filter_sql, in_unit_sql
from store.case_partitions import partition_months, partition_of_case
from store.case_stats import RECEIVED
from store.cases import db_now
from tests import factories as f
from tests.conftest import use_session

INSIDE_001 = (f.X0 + 0.01, f.Y0 + 0.03)
FEBRUARY = date(2027, 2, 1)
LAST_OF_JANUARY = month_bounds(FEBRUARY)[0] - timedelta(microseconds=1)  # 2027-01-31 23:59:59.999999 +08
FIRST_OF_FEBRUARY = month_bounds(FEBRUARY)[0]  # 2027-02-01 00:00 +08, 2027-01-31 16:00 UTC


def report(session, settings, at: datetime, description: str = "路边垃圾") -> int:
    """A case reported at `at` through intake (the service's own clock replaced by `at`)."""
    intake = Intake(
        lon=INSIDE_001[0], lat=INSIDE_001[1], input_crs="wgs84", input_lon=INSIDE_001[0],
        input_lat=INSIDE_001[1], accuracy_m=5.0, location_source="report", category="0101",
        description=description,
    )  # fmt: skip
    case_id, created = create_case(session, intake, Rules.load(settings), actor="test", now=at)
    assert created
    return case_id


def test_the_months_ahead_have_partitions(session):
    """The migration (and the service's daily step) leave this month and the next ones ready."""
    ensure_partitions(session)
    ahead = set(months_from(month_of(db_now(session)), MONTHS_AHEAD + 1))
    assert ahead <= partition_months(session)


def test_missing_months_are_made_once(session):
    """Months without a partition are made, from the given clock's month on; a second pass makes none."""
    later = datetime(2031, 3, 15, tzinfo=UTC)
    assert date(2031, 3, 1) not in partition_months(session)
    made = ensure_partitions(session, later, ahead=2)
    assert made == [date(2031, 3, 1), date(2031, 4, 1), date(2031, 5, 1)]
    assert {date(2031, 3, 1), date(2031, 5, 1)} <= partition_months(session)
    assert ensure_partitions(session, later, ahead=2) == []


def test_a_case_lands_in_its_months_partition(session, settings, county):
    """Beijing time decides the month: 23:59:59 on 31 January is January's, 00:00 is February's."""
    january = report(session, settings, LAST_OF_JANUARY)
    february = report(session, settings, FIRST_OF_FEBRUARY)
    assert partition_of_case(session, january) == "cases_2027_01"
    assert partition_of_case(session, february) == partition_name(FEBRUARY) == "cases_2027_02"


def test_intake_makes_a_missing_month(session, settings, county):
    """A report in a month nobody made a partition for is stored all the same (its month is made)."""
    far = datetime(2033, 7, 9, 10, tzinfo=UTC)
    assert date(2033, 7, 1) not in partition_months(session)
    case_id = report(session, settings, far)
    assert partition_of_case(session, case_id) == "cases_2033_07"
    assert (
        session.execute(text("SELECT count(*) FROM case_ids WHERE id = :id"), {"id": case_id}).scalar() == 1
    )


@pytest.fixture
def boundary_cases(session, settings, county) -> tuple[int, int]:
    """One case at the last instant of January 2027, one at the first of February."""
    return report(session, settings, LAST_OF_JANUARY, "一月"), report(
        session, settings, FIRST_OF_FEBRUARY, "二月"
    )


def listed(client, since: str, until: str) -> set[int]:
    answer = client.get("/cases", params={"from": since, "to": until})
    assert answer.status_code == 200, answer.text
    return {c["id"] for c in answer.json()["items"]}


def test_lists_across_a_month_boundary(client, boundary_cases):
    january, february = boundary_cases
    assert listed(client, "2027-01-01", "2027-02-01") == {january}
    assert listed(client, "2027-02-01", "2027-03-01") == {february}
    assert listed(client, "2027-01-31T12:00:00+08:00", "2027-02-01T12:00:00+08:00") == {january, february}


def received(client, since: str, until: str) -> int:
    answer = client.get("/stats", params={"unit": f.COUNTY, "from": since, "to": until})
    assert answer.status_code == 200, answer.text
    return answer.json()["received"]


def test_statistics_across_a_month_boundary(client, boundary_cases):
    assert received(client, "2027-01-01", "2027-02-01") == 1
    assert received(client, "2027-02-01", "2027-03-01") == 1
    assert received(client, "2027-01-01", "2027-03-01") == 2


def scanned_partitions(session, sql: str, params: dict) -> list[str]:
    """The tables a statement's plan reads (EXPLAIN, not run)."""
    plan = session.execute(text(f"EXPLAIN (FORMAT JSON) {sql}"), params).scalar_one()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    found: list[str] = []

    def walk(node: dict) -> None:
        if "Relation Name" in node:
            found.append(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


def test_a_months_query_reads_one_partition(session, boundary_cases):
    """Statistics' and the list's month filters are pruned to February's partition at planning."""
    start, end = month_bounds(FEBRUARY)
    in_unit, params = in_unit_sql(f.COUNTY)
    stats_sql = f"SELECT count(*) FROM cases c WHERE {in_unit} AND {RECEIVED}"
    assert scanned_partitions(session, stats_sql, {**params, "start": start, "end": end}) == ["cases_2027_02"]
    where, params = filter_sql(CaseFilter(status=["reported"], reported_from=start, reported_to=end))
    tables = scanned_partitions(session, f"SELECT c.id FROM cases c WHERE {where}", params)
    assert set(tables) == {"cases_2027_02"}
    everything = scanned_partitions(session, "SELECT c.id FROM cases c", {})
    assert len(set(everything)) > 1  # without the filter, every month is read


def test_the_services_daily_step_makes_a_missing_month_ahead(session, settings, engine):
    """The step `gridmap serve` runs at start and every day (api.app.partitions_once) makes the
    months ahead that are missing: here the furthest one, dropped first (it holds no case)."""
    furthest = months_from(month_of(db_now(session)), MONTHS_AHEAD + 1)[-1]
    session.execute(text(f"DROP TABLE {partition_name(furthest)}"))
    app = create_app(settings, engine=engine)
    use_session(app, session)
    assert partitions_once(app) == [furthest]
    assert furthest in partition_months(session)
