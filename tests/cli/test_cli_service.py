"""The `gridmap` service commands as a user runs them, on a database of its own (commands commit):
db, serve, escalate, user. (Split from test_cli.py so that the suite's two workers end together.)"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests import factories as f
from tests.cli.command import env_on, gridmap
from tests.conftest import DB_PREFIX, fresh_database
from tests.live import server


@pytest.fixture(scope="module")
def cli_env(settings) -> dict[str, str]:
    """Environment for `gridmap` pointing at an empty database of its own."""
    return env_on(fresh_database(settings, f"{DB_PREFIX}_cli_service"))


def test_db_url_and_status(cli_env):
    assert gridmap(cli_env, "db", "url").stdout.strip() == cli_env["GRIDMAP_DATABASE_URL"]
    assert "external server" in gridmap(cli_env, "db", "status").stderr


def test_serve_answers_http(cli_env):
    # `gridmap serve` as deployed: its periodic jobs on (tests.live.server runs the same command).
    with server(cli_env["GRIDMAP_DATABASE_URL"], background_jobs="true") as base:
        assert httpx.get(f"{base}/health").json()["status"] == "ok"
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == "gridmap"


def test_escalate_moves_overdue_cases_one_tier(cli_env, settings, tmp_path):
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    from cases.lifecycle import CaseStatus, Move
    from cases.model import Intake
    from cases.rules import Rules
    from services.cases import move_case as transition
    from services.intake import create_case

    county = f.write_geojson(tmp_path / "county.geojson", f.hierarchy())
    gridmap(cli_env, "import", str(county), "--crs", "EPSG:4490")
    rules, inside = Rules.load(settings), (f.X0 + 0.01, f.Y0 + 0.03)
    past = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)
    engine = create_engine(cli_env["GRIDMAP_DATABASE_URL"])
    with Session(engine) as session, session.begin():
        intake = Intake(*inside, "wgs84", *inside, None, "report", "0101", "overdue")
        case_id, _ = create_case(session, intake, rules, actor="test", now=past)
        for to in ("verified", "filed", "dispatched"):
            transition(session, case_id, Move(CaseStatus(to)), rules, actor="test", now=past)
    assert "escalated 1 overdue case" in gridmap(cli_env, "escalate").stderr
    assert "no overdue cases" in gridmap(cli_env, "escalate").stderr
    with engine.connect() as conn:
        tier = conn.execute(text("SELECT tier FROM cases WHERE id = :id"), {"id": case_id}).scalar()
        audited = conn.execute(
            text("SELECT actor, details FROM audit_log WHERE action = 'case_escalation' ORDER BY id")
        ).all()
    engine.dispose()
    assert tier == "community"
    # The pass that moved the case is in the audit log, by who ran it; the empty pass left nothing.
    assert [(a.actor, a.details) for a in audited] == [("cli", {"count": 1, "cases": [case_id]})]


def test_user_commands(cli_env, tmp_path):
    county = f.write_geojson(tmp_path / "county.geojson", f.hierarchy())
    gridmap(cli_env, "import", str(county), "--crs", "EPSG:4490")
    added = gridmap(cli_env, "user", "add", "zhang.san", "--role", "dispatcher", "--unit", f.STREET)
    assert "generated password (shown once)" in added.stderr and "dispatcher in 419999001" in added.stderr
    assert "zhang.san\tdispatcher\t419999001\t-\tactive" in gridmap(cli_env, "user", "list").stdout
    wrong_role = gridmap(cli_env, "user", "add", "li", "--role", "boss", "--unit", f.STREET, check=False)
    assert wrong_role.returncode == 1 and "choose one of" in wrong_role.stderr
    no_unit = gridmap(cli_env, "user", "add", "li", "--role", "viewer", "--unit", "419998", check=False)
    assert (
        no_unit.returncode == 1
        and "no current unit 419998" in no_unit.stderr
        and "Traceback" not in no_unit.stderr
    )
    gridmap(cli_env, "user", "disable", "zhang.san")
    assert "disabled" in gridmap(cli_env, "user", "list").stdout
    gridmap(cli_env, "user", "reset-password", "zhang.san", "--password", "new-password-1")
    engine = create_engine(cli_env["GRIDMAP_DATABASE_URL"])
    with engine.connect() as conn:
        actions = conn.execute(
            text("SELECT action FROM audit_log WHERE target = 'zhang.san' ORDER BY id")
        ).scalars()
        assert list(actions) == ["user_add", "user_disable", "user_reset_password"]
    engine.dispose()
