"""Read-only API keys (issue 17 §5): a user creates, lists and revokes them; a key reads what its
owner may read (tiles and TileJSON by `?key=`, anything by header) and never writes; only its hash
is stored; creating and revoking are audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from access.roles import Role
from services import api_keys
from store import users
from store.tiles import tile_of
from tests import factories as f
from tests.live import TEST_SECRET

PASSWORD = "mapper-password-1"


@pytest.fixture
def mapper(client: TestClient, session: Session, county) -> dict[str, str]:
    """A viewer of the test street, signed in: the headers of their bearer token."""
    users.add_user(session, "mapper", PASSWORD, Role.VIEWER, f.STREET)
    answer = client.post("/auth/token", data={"username": "mapper", "password": PASSWORD})
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def bare(client: TestClient) -> TestClient:
    """A client of the same app sending no credentials of its own."""
    return TestClient(client.app, base_url="https://testserver")


def a_tile(session: Session) -> str:
    lon, lat = session.execute(
        text("SELECT ST_X(p), ST_Y(p) FROM unit_versions, ST_PointOnSurface(geom) p WHERE code = :c"),
        {"c": f.STREET},
    ).one()
    return "/map/tiles/14/{}/{}.pbf".format(*tile_of(lon, lat, 14))


def test_a_key_reads_tiles_tilejson_and_data_as_its_owner(client, session, mapper):
    made = client.post("/auth/keys", json={"name": "QGIS 规划科", "days": 30}, headers=mapper)
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    assert key.startswith("gmk_") and made.json()["state"] == "live"
    assert made.json()["expires_at"].startswith(str((datetime.now(UTC) + timedelta(days=30)).date()))
    other = bare(client)
    doc = other.get(f"/map/tiles.json?key={key}")
    assert doc.status_code == 200
    assert f"key={key}" in doc.json()["tiles"][0]  # QGIS gets the key with every tile URL
    tile = other.get(a_tile(session) + f"?key={key}")
    assert tile.status_code == 200
    # A MapLibre page on another site may read what the key in its URL grants; without a key, no CORS.
    assert doc.headers["access-control-allow-origin"] == tile.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in tile.headers
    assert "access-control-allow-origin" not in client.get(a_tile(session)).headers
    assert other.get(a_tile(session)).status_code == 401
    assert other.get("/auth/me", headers={"X-API-Key": key}).json()["username"] == "mapper"
    assert other.get("/auth/me", headers={"Authorization": f"Bearer {key}"}).json()["username"] == "mapper"
    # The owner's jurisdiction still holds: a viewer of the street reads no unit outside it.
    assert other.get("/patrols/coverage/419998", headers={"X-API-Key": key}).status_code == 403
    # In the URL only on the map's data (a key in other URLs would end up in more logs).
    assert other.get(f"/auth/me?key={key}").status_code == 401


def test_a_key_never_writes(client, session, mapper):
    key = client.post("/auth/keys", json={"name": "MapLibre"}, headers=mapper).json()["key"]
    other = bare(client)
    report = {"category": "0101", "description": "井盖缺失", "lon": f.X0 + 0.005, "lat": f.Y0 + 0.005}
    for how in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
        refused = other.post("/cases", json=report, headers=how)  # public, but not for a key
        assert refused.status_code == 403 and "only reads" in refused.json()["detail"]
        assert other.post("/auth/keys", json={"name": "more"}, headers=how).status_code == 403
        assert other.delete("/auth/keys/1", headers=how).status_code == 403
        assert other.post("/auth/logout", headers=how).status_code == 403
    assert session.execute(text("SELECT count(*) FROM cases")).scalar_one() == 0
    assert session.execute(text("SELECT count(*) FROM api_keys")).scalar_one() == 1


def test_keys_are_listed_without_secrets_revoked_at_once_and_audited(client, session, mapper):
    made = client.post("/auth/keys", json={"name": "QGIS", "days": 1}, headers=mapper).json()
    listed = client.get("/auth/keys", headers=mapper).json()["keys"]
    assert [(k["id"], k["prefix"], k["state"]) for k in listed] == [(made["id"], made["key"][:12], "live")]
    assert "key" not in listed[0]
    stored = session.execute(text("SELECT key_hash, prefix FROM api_keys")).one()
    assert stored.key_hash == users.token_digest(TEST_SECRET, made["key"]) and made["key"] not in stored
    tile = a_tile(session) + f"?key={made['key']}"
    assert bare(client).get(tile).status_code == 200
    # Another user cannot revoke it (nor learn that it exists).
    assert client.delete(f"/auth/keys/{made['id']}").status_code == 404
    revoked = client.delete(f"/auth/keys/{made['id']}", headers=mapper)
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    assert bare(client).get(tile).status_code == 401
    assert client.delete(f"/auth/keys/{made['id']}", headers=mapper).status_code == 404
    log = users.read_audit(session, users.AuditQuery(actor="mapper"))
    actions = [(e["action"], e["details"].get("prefix"), e["details"].get("name")) for e in log]
    prefix = made["key"][:12]
    assert ("api_key_create", prefix, "QGIS") in actions and ("api_key_revoke", prefix, "QGIS") in actions
    assert all(made["key"] not in str(e) for e in log)


@pytest.mark.parametrize(
    "body",
    [{"name": "QGIS", "days": 0}, {"name": "QGIS", "days": 91}, {"name": ""}, {"name": "x" * 81},
     {"name": "QGIS\u0000"}, {"name": "bad\nname"}, {"days": 3}],
)  # fmt: skip
def test_a_key_outside_the_rules_is_422_and_nothing_is_stored(client, session, mapper, body):
    answer = client.post("/auth/keys", json=body, headers=mapper)
    assert answer.status_code == 422, answer.text
    assert session.execute(text("SELECT count(*) FROM api_keys")).scalar_one() == 0


def test_expired_keys_and_keys_of_disabled_users_are_refused(client, session, mapper):
    owner = users.user_of_row(session.execute(text("SELECT * FROM users WHERE username = 'mapper'")).one())
    long_ago = datetime.now(UTC) - timedelta(days=3)
    old = api_keys.create_key(session, owner, "old", 1, TEST_SECRET, long_ago)
    fresh = api_keys.create_key(session, owner, "fresh", 90, TEST_SECRET, datetime.now(UTC))
    other = bare(client)
    assert other.get("/auth/me", headers={"X-API-Key": old.key}).status_code == 401
    assert other.get("/auth/me", headers={"X-API-Key": fresh.key}).status_code == 200
    states = {k["name"]: k["state"] for k in client.get("/auth/keys", headers=mapper).json()["keys"]}
    assert states == {"old": "expired", "fresh": "live"}
    users.set_disabled(session, "mapper")
    assert other.get("/auth/me", headers={"X-API-Key": fresh.key}).status_code == 401
    assert other.get("/auth/me", headers={"X-API-Key": "gmk_" + "x" * 43}).status_code == 401


def test_the_keys_page_refuses_in_its_form_keeps_what_was_typed_and_escapes_it(client, session, mapper):
    hostile = "<img src=x onerror=alert(1)>"
    refused = client.post("/desk/keys", data={"name": hostile, "days": "abc"}, headers=mapper)
    assert refused.status_code == 422 and "is not a number" in refused.text
    assert hostile not in refused.text and "&lt;img src=x onerror=alert(1)&gt;" in refused.text
    too_long = client.post("/desk/keys", data={"name": "QGIS", "days": "365"}, headers=mapper)
    assert too_long.status_code == 422 and "1 to 90 days" in too_long.text
    made = client.post("/desk/keys", data={"name": hostile, "days": "2"}, headers=mapper)
    assert made.status_code == 201 and hostile not in made.text
    assert session.execute(text("SELECT count(*) FROM api_keys")).scalar_one() == 1
    key_id = session.execute(text("SELECT id FROM api_keys")).scalar_one()
    assert client.post(f"/desk/keys/{key_id}/revoke").status_code == 404  # not the admin's key
    gone = client.post(f"/desk/keys/{key_id}/revoke", headers=mapper, follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"] == "/desk/keys"
