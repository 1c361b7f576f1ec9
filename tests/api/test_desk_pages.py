"""The workbench's pages and the JSON queue without a browser: filters, counts and order, the move
form's answers (409, 422, 403 with what was typed), masking, the CSV export and its audit."""

from __future__ import annotations

import csv
import io
import re
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from access.roles import Role
from cases.model import mask_phone
from tests import accounts
from tests import factories as f

INSIDE_001 = (f.X0 + 0.01, f.Y0 + 0.03)
INSIDE_004 = (f.X0 + 0.03, f.Y0 + 0.01)
PASSWORD = "desk-test-password"
XSS = "<img src=x onerror=alert(1)>"


def report(client, where=INSIDE_001, **overrides) -> dict:
    """A case made through the API (as admin), with a reporter."""
    body = {"lon": where[0], "lat": where[1], "category": "0101", "description": "路边有一堆垃圾",
            "reporter": {"name": "李四", "phone": "13812345678"}, **overrides}  # fmt: skip
    answer = client.post("/cases", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def signed_in(client: TestClient, session, role: Role, unit: str = f.COUNTY, department: str | None = None):
    """A cookie-holding client of the same app, signed in through the login form as a new user."""
    name = f"desk-{role}-{uuid.uuid4().hex[:6]}"
    accounts.add_user(session, name, PASSWORD, role, unit, department)
    browser = TestClient(client.app, base_url="https://testserver")
    answer = browser.post("/auth/login", data={"username": name, "password": PASSWORD, "next": "/desk"},
                          follow_redirects=False)  # fmt: skip
    assert answer.status_code == 303 and "failed" not in answer.headers["location"]
    return browser


def move(client, case_id: int, to: str, **carried):
    answer = client.post(f"/cases/{case_id}/transitions", json={"to": to, **carried})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_queue_counts_groups_sorts_overdue_first_and_searches(client, session, county):
    ids = [report(client)["id"] for _ in range(3)]
    late = report(client, where=INSIDE_004, description="井盖缺失 overdue one", address="人民路 12 号")["id"]
    # Make one case overdue and another due later than the rest: the order follows the clock.
    overdue = "stage_due_at = now() - interval '1 hour', stage_yellow_at = now() - interval '2 hours'"
    session.execute(text(f"UPDATE cases SET {overdue} WHERE id = :id"), {"id": late})
    session.execute(
        text("UPDATE cases SET stage_due_at = now() + interval '9 days' WHERE id = :id"), {"id": ids[0]}
    )
    move(client, ids[1], "verified")

    answer = client.get("/queue")
    assert answer.status_code == 200, answer.text
    queue = answer.json()
    assert queue["counts"]["verify"] == 3 and queue["counts"]["file"] == 1 and queue["counts"]["done"] == 0
    order = [c["id"] for c in queue["items"]]
    assert order[0] == late and order[-1] == ids[0], order
    assert queue["items"][0]["overdue"] is True
    assert queue["groups"][0] == {
        "key": "verify",
        "label": "待核实",
        "label_en": "to verify",
        "statuses": ["reported"],
    }

    assert [c["id"] for c in client.get("/queue?group=file").json()["items"]] == [ids[1]]
    assert [c["id"] for c in client.get("/queue", params={"q": "人民路"}).json()["items"]] == [late]
    number = client.get(f"/cases/{ids[2]}").json()["number"]
    assert [c["id"] for c in client.get("/queue", params={"q": number}).json()["items"]] == [ids[2]]
    red = client.get("/queue?light=red&group=verify&group=file").json()
    assert [c["id"] for c in red["items"]] == [late] and red["counts"]["file"] == 0
    assert client.get("/queue?group=nonsense").status_code == 422
    assert client.get("/queue?light=purple").status_code == 422
    paged = client.get("/queue?size=2&page=2").json()
    assert paged["total"] == 4 and len(paged["items"]) == 2 and paged["page"] == 2


def test_a_filter_change_answers_the_queue_with_its_counts_and_the_address_to_keep(client, session, county):
    first, second = report(client)["id"], report(client, where=INSIDE_004)["id"]
    move(client, second, "verified")
    dispatcher = signed_in(client, session, Role.DISPATCHER)
    part = dispatcher.get("/desk?group=file&light=&q=", headers={"HX-Request": "true"})
    assert part.status_code == 200 and "<html" not in part.text
    assert f'data-case-id="{second}"' in part.text and f'data-case-id="{first}"' not in part.text
    assert re.search(r'id="count-open" data-count="open" hx-swap-oob="true">2<', part.text)
    assert re.search(r'id="count-verify" hx-swap-oob="true">1<', part.text)
    assert part.headers["hx-replace-url"] == "/desk?group=file&light=&q="
    page = dispatcher.get("/desk?status=verified")
    assert f'data-case-id="{second}"' in page.text and f'data-case-id="{first}"' not in page.text


def test_anonymous_visitors_sign_in_first_and_field_workers_go_to_their_own_page(client, session, county):
    anonymous = TestClient(client.app, base_url="https://testserver")
    answer = anonymous.get("/desk?group=verify", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=/desk?group=verify"
    worker = signed_in(client, session, Role.FIELD_WORKER, f.grid_code(1))
    case_id = report(client)["id"]
    for path in ("/desk", f"/desk/cases/{case_id}"):
        answer = worker.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/tasks"


def test_user_text_is_escaped_on_the_queue_and_the_case_page(client, session, county):
    case_id = report(client, description=XSS, address=XSS)["id"]
    dispatcher = signed_in(client, session, Role.DISPATCHER)
    for path in ("/desk", f"/desk/cases/{case_id}"):
        page = dispatcher.get(path)
        assert page.status_code == 200, page.text
        assert XSS not in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "<script>" not in page.text  # no inline script under the CSP


def test_a_move_form_asks_what_the_move_needs_and_keeps_what_was_typed(client, session, county):
    case_id = report(client)["id"]
    dispatcher = signed_in(client, session, Role.DISPATCHER)
    page = dispatcher.get(f"/desk/cases/{case_id}").text
    offered = set(re.findall(r'data-move="([a-z_]+)"', page))
    assert offered == {"verified", "voided", "merged"}  # exactly the API's allowed_moves
    assert "13812345678" in page  # a dispatcher sees the reporter

    form = dispatcher.get(f"/desk/cases/{case_id}/moves/voided").text
    assert 'name="reason"' in form and 'name="note"' in form and 'data-action="submit-move"' in form
    assert 'name="unit"' not in form and 'name="rating"' not in form
    assert "已安排环卫人员清运垃圾" in form  # a response template of 市容环境 (01)

    # 422: a void without its reason; what was typed comes back
    typed = {"to": "voided", "from": "reported", "note": "我写的备注", "reason": " "}
    answer = dispatcher.post(f"/desk/cases/{case_id}/moves", data=typed)
    assert answer.status_code == 422 and "reason" in answer.text and "我写的备注" in answer.text
    assert answer.headers["hx-retarget"] == f"#move-form-{case_id}"

    # Someone else moves it first: 409, the note is still there
    move(client, case_id, "verified")
    answer = dispatcher.post(f"/desk/cases/{case_id}/moves",
                             data={"to": "verified", "from": "reported", "note": "现场已核实"})  # fmt: skip
    assert answer.status_code == 409 and "现场已核实" in answer.text and "已核实" in answer.text

    answer = dispatcher.post(
        f"/desk/cases/{case_id}/moves", data={"to": "filed", "from": "verified", "note": "立案"}
    )
    assert answer.status_code == 200 and 'data-status="filed"' in answer.text
    history = client.get(f"/cases/{case_id}").json()["history"]
    assert history[-1]["to_status"] == "filed" and history[-1]["note"] == "立案"
    assert history[-1]["actor"].startswith("desk-dispatcher-")


def test_a_viewer_reads_masked_data_and_gets_no_moves(client, session, county):
    case_id = report(client)["id"]
    viewer = signed_in(client, session, Role.VIEWER)
    page = viewer.get(f"/desk/cases/{case_id}").text
    assert "data-move=" not in page and "13812345678" not in page and mask_phone("13812345678") in page
    assert "李*" in page
    answer = viewer.post(f"/desk/cases/{case_id}/moves", data={"to": "verified", "from": "reported"})
    assert answer.status_code == 403
    assert client.get(f"/cases/{case_id}").json()["status"] == "reported"


def test_a_department_sees_its_summoned_cases_only(client, session, county):
    mine, other = report(client)["id"], report(client)["id"]
    for to, unit in (("verified", None), ("filed", None), ("dispatched", None), ("reassigned", f.STREET),
                     ("reassigned", "cgj")):  # fmt: skip
        move(client, mine, to, **({"unit": unit, "reason": "吹哨"} if unit else {}))
    handler = signed_in(client, session, Role.DEPARTMENT, f.COUNTY, "cgj")
    queue = handler.get("/desk").text
    assert f'data-case-id="{mine}"' in queue and f'data-case-id="{other}"' not in queue
    page = handler.get(f"/desk/cases/{mine}").text
    assert set(re.findall(r'data-move="([a-z_]+)"', page)) == {"accepted", "returned"}
    form = client.get(f"/desk/cases/{mine}/moves/reassigned").text  # what a dispatcher would be asked
    assert 'name="unit"' in form and 'name="reason"' in form and 'name="rating"' not in form


def test_the_unit_picker_offers_units_of_the_jurisdiction_by_code_or_name(client, session, county):
    street = signed_in(client, session, Role.DISPATCHER, f.STREET)
    by_code = street.get("/desk/units", params={"unit": f.COMMUNITY}).text
    assert f'value="{f.COMMUNITY}"' in by_code and 'value="cgj"' in by_code
    assert re.search(rf'value="{f.COMMUNITY}">[^<]* · 社区 Community</option>', by_code)  # its level, named
    assert f'value="{f.COUNTY}"' not in street.get("/desk/units", params={"unit": "测试"}).text
    assert f'value="{f.STREET}"' in street.get("/desk/units", params={"unit": "测试街道"}).text


def test_the_export_is_the_filtered_queue_with_personal_data_only_for_entitled_roles(client, session, county):
    report(client)
    report(client, where=INSIDE_004, description='=HYPERLINK("x")')
    dispatcher = signed_in(client, session, Role.DISPATCHER)
    rows = list(
        csv.reader(io.StringIO(dispatcher.get("/desk/export.csv?group=verify").text.lstrip("\ufeff")))
    )
    assert len(rows) == 3 and "电话 phone" in rows[0]
    assert {r[-1] for r in rows[1:]} == {"13812345678"}
    assert any(r[4].startswith("'=") for r in rows[1:])  # a formula is kept as text
    viewer = signed_in(client, session, Role.VIEWER)
    rows = list(csv.reader(io.StringIO(viewer.get("/desk/export.csv?q=HYPERLINK").text.lstrip("\ufeff"))))
    assert len(rows) == 2 and "电话 phone" not in rows[0] and "13812345678" not in str(rows)
    audited = (
        session.execute(text("SELECT details FROM audit_log WHERE action = 'export' ORDER BY id"))
        .scalars()
        .all()
    )
    assert [(a["rows"], a["personal_data"]) for a in audited[-2:]] == [(2, True), (1, False)]


@pytest.mark.parametrize("path", ["/static/desk/desk.js", "/static/desk/htmx-2.0.11/htmx.min.js"])
def test_the_assets_are_served_by_the_service(client, path):
    answer = client.get(path)
    assert answer.status_code == 200 and answer.headers["x-content-type-options"] == "nosniff"
