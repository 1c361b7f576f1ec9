"""The `gridmap` command run as a user runs it: a process of its own on a database given by URL."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.live import TEST_SECRET


def env_on(database_url: str) -> dict[str, str]:
    """The environment of a `gridmap` command working on `database_url`."""
    return {**os.environ, "GRIDMAP_DATABASE_URL": database_url, "GRIDMAP_SECRET_KEY": TEST_SECRET}


def gridmap(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run `gridmap *args` in `env`; with `check`, it must succeed."""
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", *args], env=env, capture_output=True, text=True, timeout=300
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result
