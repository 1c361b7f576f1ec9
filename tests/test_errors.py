"""One error vocabulary (errors.py): the API, Open311 and the command line answer it as
docs/errors.md says, and one error reaches all three."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import errors
from access.roles import AccessDenied
from api.errors import STATUS_BY_KIND, InvalidParameter, PayloadTooLarge, UnsupportedMediaType, status_of
from api.live_feed import TooManyStreams
from api.open311_format import open311_status
from cases.categories import UnknownCategory
from cases.intake_checks import OutsideUnits
from cases.lifecycle import IllegalMove, MissingNeeds
from cases.photos import PhotoCorrupt, PhotoTooBig, PhotoUnsupported
from cli.errors import EXIT_CODE_BY_KIND, exit_code
from geo import crs
from geo.codes import CodeError
from geo.crs import CoordinateError
from geo.importer import ImportRejected
from geo.patrols import PatrolRejected
from geo.plans import CodeTaken, EditError, PlanClosed, PlanConflict, PlanInvalid, PlanNotFound
from store.cases import CaseNotFound, IdempotencyConflict, InvalidReport, InvalidTarget
from store.patrols import PatrolNotFound
from store.people import PeopleError
from store.users import UserError

DOC = Path(__file__).resolve().parent.parent / "docs" / "errors.md"
ROW = re.compile(r"^\| `(\w+)` \|[^|]*\| (\d+) \| (\d+) \| (\d+) \|$", re.M)

# The statuses the API answered each error with before the vocabulary (api/errors.py's old table
# of 26 classes and the photo kinds), written out by hand: the kinds must keep every one.
STATUS_BEFORE = {
    CoordinateError: 422, CodeError: 422, ImportRejected: 422, InvalidParameter: 422,
    UnsupportedMediaType: 415, PayloadTooLarge: 413, errors.NotFound: 404, CaseNotFound: 404,
    UnknownCategory: 422, IdempotencyConflict: 422, InvalidTarget: 422, InvalidReport: 422,
    OutsideUnits: 422, MissingNeeds: 422, IllegalMove: 409, AccessDenied: 403, UserError: 422,
    PlanNotFound: 404, EditError: 422, CodeTaken: 422, PlanInvalid: 422, PlanClosed: 409,
    PlanConflict: 409, PatrolRejected: 422, PatrolNotFound: 404, TooManyStreams: 429,
    PhotoTooBig: 413, PhotoUnsupported: 415, PhotoCorrupt: 422, PeopleError: 422,
}  # fmt: skip


def documented() -> dict[str, tuple[int, int, int]]:
    """docs/errors.md's table: kind → (API status, Open311 status, CLI exit code)."""
    return {m[1]: (int(m[2]), int(m[3]), int(m[4])) for m in ROW.finditer(DOC.read_text(encoding="utf-8"))}


def test_the_three_maps_are_the_documented_table():
    table = documented()
    assert sorted(table) == sorted(kind.__name__ for kind in errors.KINDS)
    for kind in errors.KINDS:
        api = STATUS_BY_KIND[kind]
        assert (api, open311_status(api), EXIT_CODE_BY_KIND[kind]) == table[kind.__name__], kind


@pytest.mark.parametrize(("error", "status"), STATUS_BEFORE.items(), ids=lambda v: getattr(v, "__name__", v))
def test_every_domain_error_keeps_its_status(error, status):
    exc = error.__new__(error)  # the class decides; no message needed
    assert errors.kind_of(exc) is not None
    assert status_of(exc) == status
    assert exit_code(exc) == 1


def test_an_error_outside_the_vocabulary_has_no_kind():
    assert errors.kind_of(RuntimeError("bug")) is None
    assert errors.message_of(UnknownCategory("no category 99")) == "no category 99"  # not KeyError's repr


def _unknown_crs_message() -> str:
    with pytest.raises(CoordinateError) as raised:
        crs.normalize_crs("mars")
    return str(raised.value)


def test_one_error_reaches_the_api_open311_and_the_command_line(client, county, tmp_path):
    message = _unknown_crs_message()
    # The JSON API: 422 (Invalid), the message as detail.
    answer = client.get("/locate", params={"lon": 114.9, "lat": 33.4, "crs": "mars"})
    assert (answer.status_code, answer.json()) == (422, {"detail": message})
    # Open311: 400, the message as the description of the spec's error list, in JSON and XML.
    form = {"service_code": "0101", "lat": "33.4", "long": "114.9", "crs": "mars", "description": "x"}
    o311 = client.post("/open311/v2/requests.json", data=form)
    assert (o311.status_code, o311.json()) == (400, [{"code": 400, "description": message}])
    xml = client.post("/open311/v2/requests.xml", data=form)
    assert xml.status_code == 400 and f"<description>{message}</description>" in xml.text
    # The command line: `error: message` on stderr, exit code 1, no traceback.
    points = tmp_path / "points.csv"
    points.write_text("id,lon,lat\n1,114.9,33.4\n")
    command = [sys.executable, "-m", "cli.main", "assign", str(points), "--crs", "mars", "-o", "o.csv"]
    run = subprocess.run(command, cwd=tmp_path, env=os.environ, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and f"error: {message}" in run.stderr and "Traceback" not in run.stderr
