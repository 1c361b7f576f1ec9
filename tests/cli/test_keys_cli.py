"""`gridmap user key create|list|revoke` as a user runs it, on a database of its own (commands commit)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from store.users import token_digest
from tests import factories as f
from tests.cli.command import env_on, gridmap
from tests.conftest import DB_PREFIX, TEST_SECRET, county_database


@pytest.fixture(scope="module")
def key_env(settings) -> dict[str, str]:
    """`gridmap` on a database with the test county and one user, `kong`."""
    env = env_on(county_database(settings, f"{DB_PREFIX}_cli_keys"))
    gridmap(env, "user", "add", "kong", "--role", "planner", "--unit", f.STREET, "--password", "kong-pass-1")
    return env


def test_a_key_is_made_listed_and_revoked_from_the_command_line(key_env):
    made = gridmap(key_env, "user", "key", "create", "kong", "--name", "QGIS 规划科", "--days", "7")
    key = made.stdout.strip()
    assert key.startswith("gmk_") and "shown once" in made.stderr and key not in made.stderr
    listed = gridmap(key_env, "user", "key", "list", "kong").stdout.splitlines()
    key_id, prefix, state, _, name = listed[0].split("\t")
    assert (prefix, state, name) == (key[:12], "live", "QGIS 规划科")
    engine = create_engine(key_env["GRIDMAP_DATABASE_URL"])
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT key_hash FROM api_keys")).scalar_one()
    assert stored == token_digest(TEST_SECRET, key)
    gridmap(key_env, "user", "key", "revoke", "kong", key_id)
    assert "\trevoked\t" in gridmap(key_env, "user", "key", "list", "kong").stdout
    again = gridmap(key_env, "user", "key", "revoke", "kong", key_id, check=False)
    assert again.returncode == 1 and f"kong has no live key {key_id}" in again.stderr
    with engine.connect() as conn:
        actions = conn.execute(
            text("SELECT actor, action FROM audit_log WHERE action LIKE 'api_key%' ORDER BY id")
        ).all()
    engine.dispose()
    assert [tuple(a) for a in actions] == [("cli", "api_key_create"), ("cli", "api_key_revoke")]


def test_a_key_outside_the_rules_is_a_message_and_nothing_is_stored(key_env):
    before = gridmap(key_env, "user", "key", "list", "kong").stdout
    too_long = gridmap(key_env, "user", "key", "create", "kong", "--name", "x", "--days", "91", check=False)
    assert too_long.returncode == 1 and "1 to 90 days" in too_long.stderr
    assert "Traceback" not in too_long.stderr
    nobody = gridmap(key_env, "user", "key", "create", "nobody", "--name", "x", check=False)
    assert nobody.returncode == 1 and "no user 'nobody'" in nobody.stderr
    assert too_long.stdout == nobody.stdout == ""
    assert gridmap(key_env, "user", "key", "list", "kong").stdout == before
