"""A bounded schemathesis run over the whole OpenAPI document, as a visitor, an admin and a field
worker, on a committed PostGIS database of its own: no answer may be a 5xx (`not_a_server_error`).

Bounded to stay under a minute on the test machine: few examples per operation, no shrinking, no
deadline, derandomized (the same requests every run). Routes that stream forever are left out."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from access.roles import Role
from api.access import RULES
from api.app import create_app
from cases.model import Intake
from services import intake as intake_service
from store import cases as store
from store import users
from tests import factories as f
from tests.conftest import DB_PREFIX, act_as_admin, county_database

PASSWORD = "fuzz-password-123"
WORKER = f"fuzz.worker.{f.grid_code(1)}"
# Examples per operation, generation mode and caller: the suite's run stays under a minute;
# GRIDMAP_FUZZ_EXAMPLES=50 makes a longer hunt of the same shape.
EXAMPLES = int(os.environ.get("GRIDMAP_FUZZ_EXAMPLES", "2"))
ENDLESS = {("GET", "/cases/stream")}  # a stream that never ends: nothing to fuzz in one request
SIGNS_OUT = {("POST", "/auth/logout")}  # would end the caller's token for the rest of the run


# No shrinking (a failure is reported as found), no deadline, the same examples every run.
BOUNDED = hsettings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def fuzz_app(settings) -> Iterator[TestClient]:
    """The app on a committed database of its own: the test county, a field worker, two cases."""
    url = county_database(settings, f"{DB_PREFIX}_fuzz")
    engine = create_engine(url)
    rules = store.Rules.load(settings)
    with Session(engine) as session, session.begin():
        users.add_user(session, WORKER, PASSWORD, Role.FIELD_WORKER, f.grid_code(1), None)
        for lon, lat in ((f.X0 + 0.01, f.Y0 + 0.03), (f.X0 + 0.03, f.Y0 + 0.01)):
            intake = Intake(lon, lat, "wgs84", lon, lat, 5.0, "report", "0101", "垃圾")
            intake_service.create_case(session, intake, rules, actor="test")
    app = create_app(settings.model_copy(update={"database_url": url}), engine=engine)
    # A server error comes back as the 500 a client would see, for the check to judge.
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        yield client
    engine.dispose()


def caller_headers(client: TestClient, caller: str) -> dict[str, str]:
    if caller == "admin":
        return act_as_admin(client.app)
    if caller == "field_worker":
        answer = client.post("/auth/token", data={"username": WORKER, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}
    return {}


@pytest.mark.parametrize("caller", ["anonymous", "admin", "field_worker"])
def test_no_operation_answers_a_server_error(fuzz_app, caller):
    client = fuzz_app
    headers = caller_headers(client, caller)
    schema = schemathesis.openapi.from_dict(client.get("/openapi.json").json())
    for result in schema.get_all_operations():
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        if key in ENDLESS or (caller != "anonymous" and key in SIGNS_OUT):
            continue
        if caller == "anonymous" and not open_to_visitors(key):
            continue  # a visitor is refused: the test below asks each once, for its 401
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz(client, headers, operation, mode)
            except Unsatisfiable:  # nothing to break in an operation without parameters
                assert mode is GenerationMode.NEGATIVE, key


def open_to_visitors(key: tuple[str, str]) -> bool:
    """Whether a visitor's request reaches the operation (a public rule, or one public while a
    setting says so); a route without a rule is refused, and fuzzed as anyone's."""
    rule = RULES.get(key)
    return rule is None or rule.permission is None or rule.public_if is not None


def test_an_operation_for_users_refuses_a_visitor_with_401(fuzz_app):
    """Every operation a visitor may not use answers a request without credentials with 401: one
    request each says more than the anonymous fuzzing of them did (401, not just no 5xx), which
    cost about 100 s of this module's 316 s at a load of 17 (2 modes x 2 examples each, a 401 or a
    422 each time)."""
    schema = fuzz_app.get("/openapi.json").json()
    refused = [
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
        and not open_to_visitors((method.upper(), path))
    ]
    assert len(refused) > 20  # most of the API is for signed-in users
    for method, path in refused:
        url = re.sub(r"\{format\}", "json", re.sub(r"\{(?!format)[^}]+\}", "1", path))
        answer = fuzz_app.request(method, url, follow_redirects=False)
        if RULES[(method, path)].page:  # a page sends a visitor to sign in first
            assert answer.status_code == 303, (method, url, answer.status_code)
            assert answer.headers["location"].startswith("/login"), (method, url)
            continue
        assert answer.status_code == 401, (method, url, answer.status_code, answer.text[:200])
        assert answer.headers.get("www-authenticate", "").startswith("Bearer"), (method, url)


def _renderable(files):
    """Generated multipart files as httpx can send them: a number or null in a file's place
    (a negative example) becomes its text, which is what a client would send."""

    def content(value):
        return value if isinstance(value, bytes | str) or hasattr(value, "read") else str(value).encode()

    def part(value):
        if isinstance(value, tuple):
            return (value[0], content(value[1]), *value[2:])
        return content(value)

    if isinstance(files, dict):
        return {name: part(value) for name, value in files.items()}
    return [(name, part(value)) for name, value in files]


def fuzz(client: TestClient, headers: dict, operation, mode: GenerationMode) -> None:
    """Send EXAMPLES requests generated for `operation`; a server error fails the test."""

    @BOUNDED
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case) -> None:
        kwargs = case.as_transport_kwargs(base_url="https://testserver", headers=headers)
        kwargs.pop("cookies", None)  # none are generated; the client's own are kept
        if isinstance(kwargs.get("data"), bytes | str):
            kwargs["content"] = kwargs.pop("data")  # raw bytes, as httpx wants them
        if kwargs.get("files"):
            kwargs["files"] = _renderable(kwargs["files"])
        response = client.request(**kwargs)
        response.request.read()  # for the check's report of the request
        # A 5xx fails the test with schemathesis's report: the request as a curl command.
        case.validate_response(response, checks=[not_a_server_error])

    call()
