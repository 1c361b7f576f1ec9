"""The command dashboard's JSON (GET /stats/dashboard): its figures are /stats' and GET /cases' for the
same unit and period, per child unit, per day, per category and per place; jurisdiction; bad input."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import text

from access.roles import Role
from api.app import create_app
from cases.lifecycle import OPEN_STATUSES
from cases.worktime import SHANGHAI
from tests import accounts
from tests import factories as f
from tests.api.test_cases import INSIDE_001, advance, move, post, report
from tests.conftest import use_session

INSIDE_004 = (f.X0 + 0.03, f.Y0 + 0.01)  # grid 004 (south-east)
PASSWORD = "dashboard-test-pw"


def stats(client, unit: str, period: dict) -> dict:
    answer = client.get("/stats", params={"unit": unit, "from": period["from"], "to": period["to"]})
    assert answer.status_code == 200, answer.text
    return answer.json()


def open_total(client, unit: str, **params) -> int:
    answer = client.get("/cases", params={"unit": unit, "status": OPEN_STATUSES, "limit": 1, **params})
    assert answer.status_code == 200, answer.text
    return answer.json()["total"]


@pytest.fixture
def busy_county(client, session, county) -> dict[str, int]:
    """Cases made through the API: two closed and revisited in grid 1 (one satisfied, one not), one
    overdue in grid 4, one fresh in grid 1, one reported three days ago in grid 4."""
    done = post(client, report()).json()["id"]
    advance(client, done, "revisited")
    unhappy = post(client, report(category="0102")).json()["id"]
    advance(client, unhappy, "closed")
    assert move(client, unhappy, "revisited", rating="unsatisfied").status_code == 200
    late = post(client, report(lon=INSIDE_004[0], lat=INSIDE_004[1], category="0102")).json()["id"]
    advance(client, late, "dispatched")
    fresh = post(client, report(category="0103")).json()["id"]
    older = post(client, report(lon=INSIDE_004[0], lat=INSIDE_004[1])).json()["id"]
    # Time passes: the dispatched case's clock ran out an hour ago; the older case came in 3 days ago.
    session.execute(
        text("UPDATE cases SET stage_yellow_at = now() - interval '2 hours', "
             "stage_due_at = now() - interval '1 hour' WHERE id = :id"), {"id": late}
    )  # fmt: skip
    session.execute(
        text("UPDATE cases SET reported_at = reported_at - interval '3 days' WHERE id = :id"), {"id": older}
    )
    return {"done": done, "unhappy": unhappy, "late": late, "fresh": fresh, "older": older}


def test_the_dashboard_figures_are_those_of_stats_and_cases_for_the_same_unit_and_period(client, busy_county):
    d = client.get("/stats/dashboard", params={"unit": f.COMMUNITY}).json()
    assert d["unit"] == {"code": f.COMMUNITY, "name": "测试社区", "level": "community"}
    for period in ("today", "month"):
        figures, expected = d[period], stats(client, f.COMMUNITY, d[period])
        assert (figures["received"], figures["closed"]) == (expected["received"], expected["closed"])
        done = sum(s["done"] for s in expected["on_time"].values())
        kept = sum(s["on_time"] for s in expected["on_time"].values())
        assert figures["on_time"] == {"done": done, "on_time": kept, "late": done - kept,
                                      "rate": round(kept / done, 4)}  # fmt: skip
        assert figures["late_stages"] == done - kept
    assert d["month_stats"] == stats(client, f.COMMUNITY, d["month"])
    assert d["today"]["received"] == 4  # the older case came in three days ago (if today is the 1st…)
    assert d["month_stats"]["satisfaction"]["counts"] == {
        "satisfied": 1,
        "basically_satisfied": 0,
        "unsatisfied": 1,
    }
    assert d["month_stats"]["resolved_by_tier"]["local_share"] == 1.0
    # The unsatisfied revisit reopened its case: open again, no longer closed.
    assert d["open_now"] == open_total(client, f.COMMUNITY) == 4
    assert d["overdue_now"] == open_total(client, f.COMMUNITY, overdue=True) == 1


def test_the_ranking_has_each_child_units_own_figures_best_first(client, busy_county):
    d = client.get("/stats/dashboard", params={"unit": f.COMMUNITY}).json()
    rows = {r["code"]: r for r in d["ranking"]}
    assert sorted(rows) == [f.grid_code(n) for n in (1, 2, 3, 4)]
    for code, row in rows.items():
        expected = stats(client, code, d["month"])
        done = sum(s["done"] for s in expected["on_time"].values())
        kept = sum(s["on_time"] for s in expected["on_time"].values())
        assert (row["received"], row["closed"], row["stages_done"], row["stages_on_time"]) == (
            expected["received"], expected["closed"], done, kept)  # fmt: skip
        assert row["overdue_now"] == open_total(client, code, overdue=True)
        assert row["name"] == f"单元{code}" and row["level"] == "grid"
    assert rows[f.grid_code(4)]["overdue_now"] == 1 and rows[f.grid_code(1)]["overdue_now"] == 0
    # Best on-time rate first; at the same rate fewer overdue first; units that completed nothing
    # last (by code). Every stage so far was on time: grid 1 and grid 4 tie at 100 %.
    assert [(r["rank"], r["code"], r["on_time_rate"]) for r in d["ranking"]] == [
        (1, f.grid_code(1), 1.0), (2, f.grid_code(4), 1.0),
        (3, f.grid_code(2), None), (4, f.grid_code(3), None),
    ]  # fmt: skip


def test_the_trend_counts_each_day_as_stats_does_for_that_day(client, busy_county):
    d = client.get("/stats/dashboard", params={"unit": f.COMMUNITY}).json()
    days = [date.fromisoformat(x["date"]) for x in d["trend"]]
    today = datetime.fromisoformat(d["now"]).astimezone(SHANGHAI).date()
    assert len(days) == 30 and days[-1] == today and days[0] == today - timedelta(days=29)
    for x in d["trend"]:
        if x["date"] in (str(today), str(today - timedelta(days=3)), str(today - timedelta(days=4))):
            day = date.fromisoformat(x["date"])
            end = d["now"] if day == today else str(day + timedelta(days=1))
            expected = stats(client, f.COMMUNITY, {"from": str(day), "to": end})
            assert (x["received"], x["closed"]) == (expected["received"], expected["closed"]), x
    by_day = {x["date"]: x for x in d["trend"]}
    assert by_day[str(today)] == {"date": str(today), "received": 4, "closed": 1}  # one was reopened
    assert by_day[str(today - timedelta(days=3))]["received"] == 1
    assert sum(x["received"] for x in d["trend"]) == 5



def test_a_grids_trend_is_counted_from_its_cases_and_its_grids_add_up_to_the_community(client, busy_county):
    """Below the community the roll-up keeps nothing (0022): a grid's trend is read from its cases
    (store.case_direct), day by day as /stats counts the grid, and the grids' add up to their
    community's, which the roll-up gives."""
    grids = [f.grid_code(n) for n in range(1, 5)]
    units = [*grids, f.COMMUNITY]
    trend = {u: client.get("/stats/dashboard", params={"unit": u}).json()["trend"] for u in units}
    for i, day in enumerate(trend[f.COMMUNITY]):
        for figure in ("received", "closed"):
            assert sum(trend[g][i][figure] for g in grids) == day[figure], (day, figure)
    assert sum(x["received"] for x in trend[f.grid_code(4)]) == 2  # the late case and the older one
    now = client.get("/stats/dashboard", params={"unit": f.grid_code(1)}).json()["now"]
    for g in grids:
        for x in trend[g]:
            day = date.fromisoformat(x["date"])
            end = now if x is trend[g][-1] else str(day + timedelta(days=1))
            expected = stats(client, g, {"from": str(day), "to": end})
            assert (x["received"], x["closed"]) == (expected["received"], expected["closed"]), (g, x)

def test_top_categories_and_density_count_the_cases_of_the_unit(client, busy_county):
    d = client.get("/stats/dashboard", params={"unit": f.COMMUNITY}).json()
    month_start = datetime.fromisoformat(d["month"]["from"])
    older_in_month = datetime.fromisoformat(d["now"]) - timedelta(days=3) >= month_start
    top = {c["code"]: c for c in d["top_categories"]}
    assert top["0102"] == {"code": "0102", "name": top["0102"]["name"], "name_en": top["0102"]["name_en"],
                           "count": 2}  # fmt: skip
    assert top["0101"]["name"] == "暴露垃圾" and top["0101"]["count"] == (2 if older_in_month else 1)
    assert [c["count"] for c in d["top_categories"]] == sorted(
        (c["count"] for c in d["top_categories"]), reverse=True
    )
    assert sum(c["count"] for c in d["top_categories"]) == d["month"]["received"]
    cells = d["density"]["cells"]
    assert sum(n for _, _, n in cells) == 5  # the 30 days of the trend
    half = d["density"]["cell_deg"] / 2
    assert any(abs(lon - INSIDE_004[0]) <= half and abs(lat - INSIDE_004[1]) <= half and n == 2
               for lon, lat, n in cells)  # fmt: skip
    assert any(abs(lon - INSIDE_001[0]) <= half and abs(lat - INSIDE_001[1]) <= half and n == 3
               for lon, lat, n in cells)  # fmt: skip


def test_a_unit_without_cases_has_zeros_and_no_rates(client, county):
    d = client.get("/stats/dashboard", params={"unit": f.grid_code(2)}).json()
    assert (d["today"]["received"], d["month"]["closed"], d["open_now"], d["overdue_now"]) == (0, 0, 0, 0)
    assert d["month"]["on_time"]["rate"] is None and d["ranking"] == [] and d["density"]["cells"] == []
    assert all(x["received"] == 0 for x in d["trend"])


def test_the_map_outlines_are_the_units_children_or_the_unit_itself(client, county):
    children = client.get("/stats/dashboard/map", params={"unit": f.COMMUNITY}).json()
    assert [x["id"] for x in children["features"]] == [f.grid_code(n) for n in (1, 2, 3, 4)]
    assert children["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    alone = client.get("/stats/dashboard/map", params={"unit": f.grid_code(3)}).json()
    assert [x["id"] for x in alone["features"]] == [f.grid_code(3)]


def test_unknown_and_malformed_units_are_4xx(client, county):
    assert client.get("/stats/dashboard", params={"unit": "419998"}).status_code == 404
    assert client.get("/stats/dashboard/map", params={"unit": "419998001"}).status_code == 404
    assert client.get("/stats/dashboard", params={"unit": "41<b>"}).status_code == 422


def test_jurisdiction_default_unit_and_roles(session, settings, engine, county, busy_county):
    for role, unit in (
        (Role.DISPATCHER, f.grid_code(1)),
        (Role.VIEWER, f.STREET),
        (Role.FIELD_WORKER, f.grid_code(1)),
    ):
        accounts.add_user(session, f"dash.{role}", PASSWORD, role, unit)
    app = create_app(settings, engine=engine)
    use_session(app, session)
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="https://testserver") as anonymous:
        assert anonymous.get("/stats/dashboard").status_code == 401
        assert (
            anonymous.get("/dashboard", follow_redirects=False).headers["location"]
            == "/login?next=/dashboard"
        )

        def signed_in(role: Role) -> dict[str, str]:
            form = {"username": f"dash.{role}", "password": PASSWORD}
            token = anonymous.post("/auth/token", data=form).json()["access_token"]
            return {"Authorization": f"Bearer {token}"}

        grid_dispatcher = signed_in(Role.DISPATCHER)
        own = anonymous.get("/stats/dashboard", headers=grid_dispatcher).json()
        assert own["unit"]["code"] == f.grid_code(1) and own["today"]["received"] == 3
        refused = anonymous.get("/stats/dashboard", params={"unit": f.COMMUNITY}, headers=grid_dispatcher)
        assert refused.status_code == 403 and "outside your unit" in refused.json()["detail"]
        assert anonymous.get("/stats/dashboard/map", params={"unit": f.grid_code(4)},
                             headers=grid_dispatcher).status_code == 403  # fmt: skip
        viewer = signed_in(Role.VIEWER)
        below = anonymous.get("/stats/dashboard", params={"unit": f.COMMUNITY}, headers=viewer)
        assert below.status_code == 200 and below.json()["unit"]["code"] == f.COMMUNITY
        assert anonymous.get("/stats/dashboard", headers=viewer).json()["unit"]["code"] == f.STREET
        assert anonymous.get("/stats/dashboard", headers=signed_in(Role.FIELD_WORKER)).status_code == 403
