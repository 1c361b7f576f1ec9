"""What the API tells whom (issue 13 §5, §7): retries, ids outside the jurisdiction, moves that name
other cases or units, party-member households, phone numbers, reports outside every unit."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from access.roles import Role, User
from api.access import TokenCache
from api.app import create_app
from cases.model import mask_phone, reporter_view
from geo.settings import Settings
from tests import factories as f
from tests.conftest import use_session

GRID_1 = (f.X0 + 0.01, f.Y0 + 0.03)
GRID_4 = (f.X0 + 0.03, f.Y0 + 0.01)
BEIJING = (116.397, 39.909)  # far outside the test county (and the demo county, in Henan)
MISSING = 99_999_999
USERS = {
    "admin": User(1, "admin.county", Role.ADMIN, f.COUNTY),
    "dispatcher": User(2, "dispatcher.county", Role.DISPATCHER, f.COUNTY),
    "grid1_dispatcher": User(3, "dispatcher.grid1", Role.DISPATCHER, f.grid_code(1)),
    "grid1_worker": User(4, "worker.grid1", Role.FIELD_WORKER, f.grid_code(1)),
    "grid2_worker": User(5, "worker.grid2", Role.FIELD_WORKER, f.grid_code(2)),
}


class Tokens(TokenCache):
    """A test app's tokens: each name in `users` is that user's token (no accounts needed)."""

    def __init__(self, users: dict[str, User]) -> None:
        super().__init__(ttl_s=0)
        self.users = users

    def get(self, kind: str, token: str) -> User | None:
        """The user whose name is the token."""
        return self.users.get(token)


def as_user(name: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {name}"} if name else {}


def make_client(session: Session, settings: Settings, engine: Engine, users: dict[str, User]) -> TestClient:
    app = create_app(settings, engine=engine)
    use_session(app, session)
    app.state.token_cache = Tokens(users)
    return TestClient(app, base_url="https://testserver")


@pytest.fixture
def api(session, settings, engine, county) -> Iterator[TestClient]:
    with make_client(session, settings, engine, USERS) as client:
        yield client


def report(point: tuple[float, float], **overrides) -> dict:
    return {"lon": point[0], "lat": point[1], "category": "0101", "description": "路边垃圾",
            "reporter": {"name": "李四", "phone": "13812345678"}, **overrides}  # fmt: skip


def post(api: TestClient, body: dict, who: str | None = None, key: str | None = None):
    headers = {**as_user(who), **({"Idempotency-Key": key} if key else {})}
    return api.post("/cases", json=body, headers=headers)


def move(api: TestClient, case_id: int, who: str, **body):
    return api.post(f"/cases/{case_id}/transitions", json=body, headers=as_user(who))


# ---------------------------------------------------------------- replays


def test_a_replay_is_answered_with_the_first_answer_not_the_case_as_it_is_now(api):
    key = str(uuid.uuid4())
    first = post(api, report(GRID_4), key=key)
    assert first.status_code == 201
    case_id = first.json()["id"]
    note = "内部备注：转张科长，勿告知举报人"
    assert move(api, case_id, "dispatcher", to="verified", note=note).status_code == 200
    again = post(api, report(GRID_4), key=key)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content  # byte for byte what the reporter was told
    assert note not in again.text and "dispatcher.county" not in again.text
    assert again.json()["status"] == "reported" and again.json()["reporter"]["phone"] == "138******78"


def test_keys_belong_to_their_caller_and_nobody_else_finds_the_case_by_one(api, session):
    key = str(uuid.uuid4())
    anonymous = post(api, report(GRID_4), key=key).json()
    move(api, anonymous["id"], "dispatcher", to="verified", note="内部备注")
    # A field worker who may not see that case sends the same key and report: a case of their own.
    assert api.get(f"/cases/{anonymous['id']}", headers=as_user("grid1_worker")).status_code in (403, 404)
    theirs = post(api, report(GRID_4), "grid1_worker", key)
    assert theirs.status_code == 201 and theirs.json()["id"] != anonymous["id"]
    assert "内部备注" not in theirs.text
    # Their own retry finds their own case; another user's use of the key finds neither.
    mine_again = post(api, report(GRID_4), "grid1_worker", key)
    assert (mine_again.status_code, mine_again.json()["id"]) == (200, theirs.json()["id"])
    other = post(api, report(GRID_4), "grid2_worker", key)
    assert other.status_code == 201 and other.json()["id"] not in (anonymous["id"], theirs.json()["id"])
    # A different report under one's own key is still refused.
    assert post(api, report(GRID_1), "grid1_worker", key).status_code == 422
    stored = session.execute(text("SELECT count(*) FROM case_receipts WHERE case_id = ANY(:ids)"),
                             {"ids": [anonymous["id"], theirs.json()["id"]]}).scalar_one()  # fmt: skip
    assert stored == 2


def test_an_open311_retry_by_another_caller_makes_its_own_request(api):
    key = str(uuid.uuid4())
    form = {"service_code": "0101", "lat": GRID_4[1], "long": GRID_4[0], "description": "垃圾"}
    first = api.post("/open311/v2/requests.json", data=form, headers={"Idempotency-Key": key})
    again = api.post("/open311/v2/requests.json", data=form, headers={"Idempotency-Key": key})
    theirs = api.post("/open311/v2/requests.json", data=form,
                      headers={"Idempotency-Key": key, **as_user("grid1_worker")})  # fmt: skip
    assert (first.status_code, again.status_code, theirs.status_code) == (201, 200, 201)
    ids = [r.json()[0]["service_request_id"] for r in (first, again, theirs)]
    assert ids[0] == ids[1] != ids[2]


# ---------------------------------------------------------------- 404 alike


def _same_as_missing(answer, missing, case_id: int) -> None:
    assert answer.status_code == missing.status_code == 404
    assert answer.text == missing.text.replace(str(MISSING), str(case_id))


def test_a_case_outside_the_jurisdiction_is_answered_as_a_missing_one_on_every_case_route(api):
    outside = post(api, report(GRID_4)).json()["id"]
    who = as_user("grid1_dispatcher")
    for path in ("/cases/{}", "/cases/{}/photos/1", "/cases/{}/assignments", "/open311/v2/requests/{}.json"):
        missing = api.get(path.format(MISSING), headers=who)
        _same_as_missing(api.get(path.format(outside), headers=who), missing, outside)
    body = {"to": "verified"}
    missing = api.post(f"/cases/{MISSING}/transitions", json=body, headers=who)
    _same_as_missing(api.post(f"/cases/{outside}/transitions", json=body, headers=who), missing, outside)
    # Merged, voided or open: the state of a case outside the jurisdiction does not show either.
    move(api, outside, "dispatcher", to="voided", reason="重复")
    missing = api.post(f"/cases/{MISSING}/transitions", json=body, headers=who)
    _same_as_missing(api.post(f"/cases/{outside}/transitions", json=body, headers=who), missing, outside)


def test_a_move_names_only_cases_and_units_inside_the_movers_rights(api):
    mine = post(api, report(GRID_1)).json()["id"]
    other = post(api, report(GRID_4)).json()["id"]
    merged_elsewhere = post(api, report(GRID_4)).json()["id"]
    move(api, merged_elsewhere, "dispatcher", to="merged", into=other)
    merge = {"to": "merged", "into": other}
    refused = move(api, mine, "grid1_dispatcher", **merge)
    missing = move(api, mine, "grid1_dispatcher", to="merged", into=MISSING)
    _same_as_missing(refused, missing, other)
    into_merged = move(api, mine, "grid1_dispatcher", to="merged", into=merged_elsewhere)
    _same_as_missing(into_merged, missing, merged_elsewhere)  # not "case N is merged"
    assert api.get(f"/cases/{mine}", headers=as_user("admin")).json()["status"] == "reported"
    # A unit outside the jurisdiction, or a department summoned from below the street: refused.
    for move_ in (move(api, mine, "grid1_dispatcher", to="dispatched", unit=f.grid_code(4)),
                  move(api, mine, "grid1_dispatcher", to="dispatched", unit="cgj")):  # fmt: skip
        assert move_.status_code == 403, move_.text
    # Inside the rights it works: the county's dispatcher merges the one into the other.
    assert move(api, mine, "dispatcher", **merge).json()["merged_into"] == other


def test_who_may_hand_a_case_to_what():
    departments = {"cgj"}
    street = User(1, "s", Role.DISPATCHER, f.STREET)
    grid = User(2, "g", Role.DISPATCHER, f.grid_code(1))
    assert street.may_hand_to(f.grid_code(4), departments) and street.may_hand_to("cgj", departments)
    assert street.may_hand_to(f.COUNTY, departments)  # up the chain: escalating
    assert not street.may_hand_to("419999002", departments)  # another street
    assert grid.may_hand_to(f.COMMUNITY, departments) and not grid.may_hand_to(f.grid_code(2), departments)
    assert not grid.may_hand_to("cgj", departments)


# ---------------------------------------------------------------- party cells


@pytest.fixture
def demo_api(demo_session, settings, demo_engine) -> Iterator[tuple[TestClient, str]]:
    """The demo county, a field worker in a grid with central households, an admin and a street dispatcher."""
    grid = demo_session.execute(
        text("""SELECT unit_code FROM party_cells WHERE kind = 'central_household' AND length(unit_code) = 15
                GROUP BY unit_code ORDER BY count(*) DESC, unit_code LIMIT 1""")
    ).scalar_one()  # fmt: skip
    users = {
        "worker": User(1, "w", Role.FIELD_WORKER, grid),
        "street_dispatcher": User(2, "d", Role.DISPATCHER, grid[:9]),
        "admin": User(3, "a", Role.ADMIN, grid[:6]),
    }
    with make_client(demo_session, settings, demo_engine, users) as client:
        yield client, grid


def households(answer) -> list[dict]:
    assert answer.status_code == 200, answer.text
    return [x for x in answer.json()["features"] if x["properties"]["kind"] == "central_household"]


def decimals(feature: dict) -> int:
    """How many decimals the point's coordinates carry."""
    return max(len(repr(c).partition(".")[2]) for c in feature["geometry"]["coordinates"])


def test_party_households_stay_in_the_jurisdiction_and_are_rounded_below_the_admin(demo_api, demo_session):
    client, grid = demo_api
    county_total = demo_session.execute(
        text("SELECT count(*) FROM party_cells WHERE kind = 'central_household'")
    ).scalar_one()
    worker = households(client.get("/map/party", headers=as_user("worker")))
    assert worker and all(x["properties"]["unit_code"].startswith(grid) for x in worker)
    assert len(worker) < county_total
    assert max(decimals(x) for x in worker) <= 3  # ~100 m, not the door
    near = households(client.get("/map/party", params={"near": grid}, headers=as_user("worker")))
    assert {x["properties"]["unit_code"] for x in near} <= {x["properties"]["unit_code"] for x in worker}
    other_street = "411681002" if not grid.startswith("411681002") else "411681003"
    refused = client.get("/map/party", params={"unit": other_street}, headers=as_user("worker"))
    assert refused.status_code == 403
    street = households(client.get("/map/party", headers=as_user("street_dispatcher")))
    assert all(x["properties"]["unit_code"].startswith(grid[:9]) for x in street)
    assert max(decimals(x) for x in street) <= 3
    exact = households(client.get("/map/party", params={"unit": grid}, headers=as_user("admin")))
    assert len(exact) == len(worker) and max(decimals(x) for x in exact) > 3


# ---------------------------------------------------------------- masking


@pytest.mark.parametrize("length", range(1, 21))
def test_at_least_half_of_a_phone_number_is_hidden_whatever_its_length(length):
    phone = "".join(str((3 * n + 1) % 10) for n in range(length))
    masked = mask_phone(phone)
    assert len(masked) == length and masked.count("*") * 2 >= length, masked
    assert re.fullmatch(r"[0-9]{0,3}\*+[0-9]{0,2}", masked), masked


def test_the_masks_of_the_common_numbers():
    assert mask_phone("13812345678") == "138******78"
    assert mask_phone("12345678") == "12****78"  # 7 of 8 digits showed before
    assert mask_phone("+86 138-1234-5678") == "861********78"
    assert mask_phone("110") == "***"
    assert reporter_view({"name": "李四", "phone": "12345678"})["phone"] == "12****78"


# ---------------------------------------------------------------- far outside


def test_a_report_outside_every_unit_is_flagged_in_its_answer_and_history(api):
    answer = post(api, report(BEIJING))
    assert answer.status_code == 201, answer.text
    flags = answer.json()["flags"]
    assert len(flags) == 1 and "outside every unit" in flags[0] and "km away" in flags[0]
    detail = api.get(f"/cases/{answer.json()['id']}", headers=as_user("dispatcher")).json()
    assert detail["history"][0]["details"]["flags"] == flags
    inside = post(api, report(GRID_1))
    assert inside.json()["flags"] == []


def test_a_deployment_may_refuse_reports_outside_every_unit(session, settings, engine, county):
    refusing = settings.model_copy(update={"refuse_outside_units": True})
    with make_client(session, refusing, engine, USERS) as api:
        refused = post(api, report(BEIJING), key=str(uuid.uuid4()))
        assert refused.status_code == 422 and "outside every unit" in refused.json()["detail"]
        form = {"service_code": "0101", "lat": BEIJING[1], "long": BEIJING[0], "description": "垃圾"}
        open311 = api.post("/open311/v2/requests.json", data=form)
        assert open311.status_code == 400 and "outside every unit" in open311.json()[0]["description"]
        assert post(api, report(GRID_1)).status_code == 201
    count = session.execute(text("SELECT count(*) FROM cases WHERE grid_code IS NULL")).scalar_one()
    assert count == 0


# ---------------------------------------------------------------- suggested duplicates


def test_suggested_duplicates_are_only_cases_the_caller_may_see(api):
    """Two reports 20 m apart on either side of the line between grids 1 and 2."""
    west = post(api, report((f.X0 + 0.0199, f.Y0 + 0.03))).json()
    assert west["duplicates"] == []
    east = post(api, report((f.X0 + 0.0201, f.Y0 + 0.03)))  # anonymous: learns of no other case
    assert east.status_code == 201 and east.json()["duplicates"] == []
    east = east.json()["id"]
    county = api.get(f"/cases/{west['id']}", headers=as_user("dispatcher")).json()["duplicates"]
    assert [d["id"] for d in county] == [east] and set(county[0]) == {"id", "number", "status", "distance_m"}
    grid1 = api.get(f"/cases/{west['id']}", headers=as_user("grid1_dispatcher"))
    assert grid1.status_code == 200 and grid1.json()["duplicates"] == []
    reported = post(api, report((f.X0 + 0.0198, f.Y0 + 0.03)), "grid1_worker").json()["duplicates"]
    assert [d["id"] for d in reported] == [west["id"]]  # in their grid: shown; the other one: not
