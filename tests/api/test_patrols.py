"""Patrols through the API: upload (cleaned, thinned, once per key), who sees tracks, figures, retention."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from access.roles import Role
from api.app import expire_patrols_once
from tests import accounts
from tests import factories as f

PASSWORD = "password-123"
METRE_LAT = 1 / 111_000
X_001 = f.X0 + 0.01  # the middle of grid 001 (west half), which spans f.Y0 + 0.02 … f.Y0 + 0.04


def walk(
    start: datetime, n: int = 60, step_m: float = 6.0, every_s: float = 5.0, x: float = X_001
) -> list[dict]:
    """Points of a walk north through grid 001, as a phone sends them."""
    return [
        {"t": (start + timedelta(seconds=i * every_s)).isoformat(), "lon": x,
         "lat": f.Y0 + 0.022 + i * step_m * METRE_LAT, "accuracy_m": 6}
        for i in range(n)
    ]  # fmt: skip


def sign_in(client, session, name: str, role: Role, unit: str) -> dict[str, str]:
    accounts.add_user(session, name, PASSWORD, role, unit, None)
    token = client.post("/auth/token", data={"username": name, "password": PASSWORD}).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


@pytest.fixture
def people(client, session, county) -> dict[str, dict[str, str]]:
    """A worker of grid 001, one of grid 002, the community's dispatcher."""
    return {
        "worker": sign_in(client, session, "walker.one", Role.FIELD_WORKER, f.grid_code(1)),
        "other": sign_in(client, session, "walker.two", Role.FIELD_WORKER, f.grid_code(2)),
        "community": sign_in(client, session, "boss.community", Role.DISPATCHER, f.COMMUNITY),
    }


def upload(client, headers, points, key: str | None = None):
    return client.post(
        "/patrols", json={"points": points}, headers={**headers, **({"Idempotency-Key": key} if key else {})}
    )


def test_a_patrol_is_stored_once_with_its_length_and_grids_and_bad_points_counted(client, people):
    start = datetime.now(UTC) - timedelta(hours=1)
    points = walk(start, n=120)
    points[10]["lon"] = X_001 + 0.5  # 46 km away 5 s later: a GPS jump
    points[20] |= {"lon": 0.0, "lat": 0.0}  # no fix
    points.append(
        {"t": (datetime.now(UTC) + timedelta(hours=2)).isoformat(), "lon": X_001, "lat": f.Y0 + 0.03}
    )
    key = str(uuid.uuid4())
    answer = upload(client, people["worker"], points, key)
    assert answer.status_code == 201, answer.text
    patrol = answer.json()
    assert patrol["dropped"] == {"too_fast": 1, "outside_china": 1, "future": 1}
    assert patrol["received"] == 121 and 2 <= patrol["points"] < 118  # thinned (6 m steps, 10 m minimum)
    assert patrol["length_m"] == pytest.approx(119 * 6.0, rel=0.03)
    assert patrol["grids"] == [f.grid_code(1)] and patrol["username"] == "walker.one"
    again = upload(client, people["worker"], points, key)
    assert again.status_code == 200 and again.json()["id"] == patrol["id"]
    assert again.headers["idempotent-replayed"] == "true"


def test_an_upload_is_audited_once_a_retry_not_again(client, session, people):
    key = str(uuid.uuid4())
    points = walk(datetime.now(UTC) - timedelta(hours=1))
    patrol = upload(client, people["worker"], points, key).json()
    assert upload(client, people["worker"], points, key).status_code == 200
    audit = session.execute(
        text("SELECT actor, target, details FROM audit_log WHERE action = 'patrol_upload' ORDER BY id")
    ).all()
    assert [(a.actor, a.target) for a in audit] == [("walker.one", f"patrol {patrol['id']}")]
    assert audit[0].details == {"points": patrol["points"], "grids": [f.grid_code(1)]}


def test_tracks_are_seen_by_their_worker_and_supervisors_only_and_views_are_audited(client, session, people):
    start = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    patrol = upload(client, people["worker"], walk(start)).json()
    own = client.get("/patrols", headers=people["worker"]).json()["features"]
    assert [p["id"] for p in own] == [patrol["id"]] and own[0]["geometry"]["type"] == "LineString"
    assert client.get("/patrols", headers=people["other"]).json()["features"] == []
    assert (
        client.get("/patrols", params={"worker": "walker.one"}, headers=people["other"]).json()["features"]
        == []
    )
    seen = client.get(
        "/patrols", params={"day": "2026-11-30", "worker": "walker.one"}, headers=people["community"]
    )
    assert [p["id"] for p in seen.json()["features"]] == [patrol["id"]]
    assert (
        client.get("/patrols", params={"day": "2026-11-29"}, headers=people["community"]).json()["features"]
        == []
    )
    audit = session.execute(
        text("SELECT actor, details FROM audit_log WHERE action = 'patrol_view' ORDER BY id")
    ).all()
    assert [(a.actor, a.details["patrols"]) for a in audit] == [("boss.community", [patrol["id"]])]
    viewer = sign_in(client, session, "just.viewer", Role.VIEWER, f.COUNTY)
    assert client.get("/patrols", headers=viewer).status_code == 403


def test_a_grids_patrol_figure(client, people):
    upload(client, people["worker"], walk(datetime.now(UTC) - timedelta(hours=2), n=200))
    figure = client.get(f"/patrols/coverage/{f.grid_code(1)}", headers=people["worker"])
    assert figure.status_code == 200, figure.text
    body = figure.json()
    assert body["patrols"] == 1 and body["distance_m"] == 50
    assert body["patrols_per_week"] == pytest.approx(1.0)
    # 1,194 m of track inside a 1.86 km × 2.22 km grid, 50 m either side (+ the round ends):
    width, height = 0.02 * 111_000 * 0.8345, 0.02 * 111_000
    expected = (1194 * 100 + 3.1416 * 50**2 / 2) / (width * height)
    assert body["coverage_share"] == pytest.approx(expected, rel=0.05)
    empty = client.get(f"/patrols/coverage/{f.grid_code(4)}", headers=people["community"]).json()
    assert empty["patrols"] == 0 and empty["coverage_share"] == 0
    assert client.get(f"/patrols/coverage/{f.grid_code(4)}", headers=people["worker"]).status_code == 403


def test_bad_tracks_are_refused_with_a_reason(client, people):
    start = datetime.now(UTC) - timedelta(hours=1)
    nowhere = [p | {"lon": 0.0, "lat": 0.0} for p in walk(start, n=5)]
    refused = upload(client, people["worker"], nowhere)
    assert refused.status_code == 422 and "5 outside_china" in refused.json()["detail"]
    naive = [p | {"t": p["t"][:19]} for p in walk(start, n=3)]
    assert upload(client, people["worker"], naive).status_code == 422
    assert upload(client, people["worker"], walk(start, n=1)).status_code == 422
    nan = walk(start, n=3)
    nan[1]["lat"] = "NaN"
    assert upload(client, people["worker"], nan).status_code == 422
    assert (
        client.post(
            "/patrols", content=b"{", headers={**people["worker"], "content-type": "application/json"}
        ).status_code
        == 422
    )


def test_tracks_past_retention_are_deleted_by_the_periodic_job(client, session, people):
    old = upload(client, people["worker"], walk(datetime.now(UTC) - timedelta(days=181))).json()
    recent = upload(client, people["worker"], walk(datetime.now(UTC) - timedelta(days=179))).json()
    assert expire_patrols_once(client.app) == 1
    left = session.execute(text("SELECT id FROM patrols ORDER BY id")).scalars().all()
    assert old["id"] not in left and recent["id"] in left


def test_coverage_analysis_reports_grids_not_patrolled_in_n_days(client, people):
    quiet = client.get("/coverage", params={"unit": f.COMMUNITY}).json()
    assert quiet["summary"]["not_patrolled"]["count"] == 0  # no patrols recorded here: nothing to say
    upload(client, people["worker"], walk(datetime.now(UTC) - timedelta(days=1)))
    body = client.get("/coverage", params={"unit": f.COMMUNITY}).json()
    stale = [
        x["properties"] for x in body["findings"]["features"] if x["properties"]["kind"] == "not_patrolled"
    ]
    assert sorted(tuple(s["units"]) for s in stale) == [(f.grid_code(i),) for i in (2, 3, 4)]
    assert body["summary"]["not_patrolled"]["count"] == 3
