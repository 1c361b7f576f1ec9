"""`gridmap plan ...` as a user runs it, on a database of its own (commands commit)."""

from __future__ import annotations

import json
import os

import pytest
from shapely.geometry import LineString, box
from sqlalchemy import create_engine, text

from tests import factories as f
from tests.cli.command import gridmap
from tests.conftest import DB_PREFIX, county_database

HALF = f.SIZE / 2


@pytest.fixture(scope="module")
def plan_env(settings) -> dict[str, str]:
    """An empty database of its own holding the test county."""
    return {**os.environ, "GRIDMAP_DATABASE_URL": county_database(settings, f"{DB_PREFIX}_plans_cli")}


def test_plan_new_edit_validate_publish_and_list(plan_env, tmp_path):
    plan_id = gridmap(plan_env, "plan", "new", f.COMMUNITY, "--title", "拆分网格").stdout.strip()
    cut = LineString([(f.X0 + 0.006, f.Y0 + HALF - 0.001), (f.X0 + 0.006, f.Y0 + f.SIZE + 0.001)])
    line = f.write_geojson(tmp_path / "cut.geojson", [f.feature("cut", cut)])
    edited = gridmap(
        plan_env, "plan", "edit", plan_id, "split", "--code", f.grid_code(1), "--geometry", str(line)
    )
    assert f"split {f.grid_code(1)} into {f.grid_code(1)} and {f.grid_code(5)}" in edited.stderr
    checked = gridmap(plan_env, "plan", "validate", plan_id)
    assert "warning\tsize_norm" in checked.stdout and "0 error(s)" in checked.stderr  # 120 and 280 households
    published = gridmap(plan_env, "plan", "publish", plan_id, "--actor", "planner.wang")
    assert json.loads(published.stdout)["created"] == [f.grid_code(5)]
    listed = gridmap(plan_env, "plan", "list").stdout
    assert f"{plan_id}\tpublished\t{f.COMMUNITY}\t1\t拆分网格" in listed
    assert _audited(plan_env, "plan_publish", f"plan {plan_id}") == [
        (
            "planner.wang",
            {"created": [f.grid_code(5)], "changed": [f.grid_code(1)], "retired": [], "cases": 0},
        )
    ]


def _audited(env: dict[str, str], action: str, target: str) -> list[tuple[str, dict]]:
    """The audit log's entries of one action on one target: (actor, details), oldest first."""
    engine = create_engine(env["GRIDMAP_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT actor, details FROM audit_log WHERE action = :a AND target = :t ORDER BY id"),
                {"a": action, "t": target},
            ).all()
    finally:
        engine.dispose()
    return [(r.actor, r.details) for r in rows]


def test_a_draft_with_errors_is_refused_with_its_problems(plan_env, tmp_path):
    plan_id = gridmap(plan_env, "plan", "new", f.COMMUNITY, "--title", "缩小网格").stdout.strip()
    shrunk = f.write_geojson(
        tmp_path / "shrunk.geojson",
        [f.feature("x", box(f.X0 + HALF, f.Y0 + 0.005, f.X0 + f.SIZE, f.Y0 + HALF))],
    )
    gridmap(plan_env, "plan", "edit", plan_id, "replace", "--code", f.grid_code(4), "--geometry", str(shrunk))
    refused = gridmap(plan_env, "plan", "publish", plan_id, check=False)
    assert (
        refused.returncode == 1 and "✗ gap: a new gap" in refused.stderr and "Traceback" not in refused.stderr
    )
    assert _audited(plan_env, "plan_publish", f"plan {plan_id}") == []  # refused: nothing happened
    gridmap(plan_env, "plan", "abandon", plan_id)
    assert json.loads(gridmap(plan_env, "plan", "show", plan_id).stdout)["status"] == "abandoned"


def test_edit_options_are_checked_like_the_apis_edit_fields(plan_env):
    plan_id = gridmap(plan_env, "plan", "new", f.COMMUNITY, "--title", "错误的选项").stdout.strip()
    refused = gridmap(
        plan_env, "plan", "edit", plan_id, "replace", "--code", "1234567", "--kind", "suburban", check=False
    )
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "✗ --code: String should match pattern" in refused.stderr
    assert "✗ --kind: String should match pattern '^(urban|rural|special)$'" in refused.stderr
    assert json.loads(gridmap(plan_env, "plan", "show", plan_id).stdout)["edits"] == []
