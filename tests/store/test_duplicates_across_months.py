"""Suggested duplicates read the partitions of their time window only, and still find a case
reported just across a month boundary (store.cases.DUPLICATES_SQL)."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import text

from cases.rules import Rules
from store.cases import CASE_DETAILS, _duplicate_params, case_detail, rows_of
from tests.store.test_case_partitions import FIRST_OF_FEBRUARY, LAST_OF_JANUARY, report


def duplicates(session, settings, case_id: int) -> set[int]:
    """The ids suggested as duplicates of a case."""
    return {d["id"] for d in case_detail(session, case_id, Rules.load(settings))["duplicates"]}


def test_a_duplicate_across_a_month_boundary_is_found(session, settings, county):
    """Reported at the last instant of January and the first of February (two partitions), at the
    same point and of one category: each is the other's duplicate; a case a week before is not."""
    january = report(session, settings, LAST_OF_JANUARY)
    february = report(session, settings, FIRST_OF_FEBRUARY)
    earlier = report(session, settings, LAST_OF_JANUARY - timedelta(days=7))
    assert duplicates(session, settings, february) == {january}
    assert duplicates(session, settings, january) == {february}
    assert duplicates(session, settings, earlier) == set()


def test_the_search_reads_the_windows_months_only(session, settings, county):
    """The months outside the 24-hour window (here all but January and February) are never read."""
    february = report(session, settings, FIRST_OF_FEBRUARY)
    params = {"ids": [february], **_duplicate_params(Rules.load(settings))}
    plan = [row[0] for row in rows_of(session, "EXPLAIN (ANALYZE, COSTS OFF) " + CASE_DETAILS, params)]
    near = [line for line in plan if " o_" in line and "on cases_" in line]  # the search's scans
    read = {line.split(" on ")[1].split()[0] for line in near if "never executed" not in line}
    assert read == {"cases_2027_01", "cases_2027_02"} and len(near) > len(read)



def test_the_search_reads_place_and_time_from_one_index(session, settings, county):
    """Each month's scan can find the cases near the point *and* inside the window in
    `cases_near_idx` alone (migration 0024): only if the query writes the index's range expression.
    (At 10 M cases the planner ANDed the point's index with the time btree: 3.9 ms a case.)"""
    february = report(session, settings, FIRST_OF_FEBRUARY)
    params = {"ids": [february], **_duplicate_params(Rules.load(settings))}
    # A test county's months are tiny: any scan is cheap, so leave the planner the index alone.
    session.execute(text("DROP INDEX cases_reported_idx"))  # rolled back with the test
    session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(row[0] for row in rows_of(session, "EXPLAIN (COSTS OFF) " + CASE_DETAILS, params))
    scans = r"Index Scan using (cases_2027_0[12]\w*) on cases_2027_0[12] o_\d+\n\s+Index Cond: (.*)"
    near = re.findall(scans, plan)
    assert {index for index, _ in near} == {f"cases_2027_0{m}_geom_tstzrange_idx" for m in (1, 2)}, plan
    assert all("geom &&" in cond and "tstzrange(reported_at, reported_at" in cond for _, cond in near), near
