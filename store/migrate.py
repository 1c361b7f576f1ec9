"""Apply the Alembic migrations that live in the `migrations` package."""

from __future__ import annotations

import ast
from importlib.resources import files
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text

if TYPE_CHECKING:  # Alembic takes ~0.3 s to import: only where a migration runs (see upgrade_if_behind)
    from alembic.config import Config


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    """An Alembic config for the bundled migrations, on a URL or an open connection."""
    from alembic.config import Config

    here = files("migrations")
    config = Config(str(here / "alembic.ini"))
    config.set_main_option("script_location", str(here))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(url: str) -> None:
    """Bring the database at `url` to the newest schema (creating PostGIS if needed)."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")


def upgrade_if_behind(engine: Engine) -> bool:
    """Migrate the database unless it is at the bundled heads already; True if it was migrated.

    Every command migrates before it works; on a current database this check is one statement and
    Alembic is not even imported (a third of a second of every `gridmap assign`, issue 19).
    """
    with engine.connect() as connection:
        current = current_revision(connection)
    if current == bundled_heads():
        return False
    upgrade(engine.url.render_as_string(hide_password=False))
    return True


def head_revision() -> str:
    """The newest schema revision the bundled migrations know (heads joined by "," while branched)."""
    from alembic.script import ScriptDirectory

    return ",".join(sorted(ScriptDirectory.from_config(alembic_config()).get_heads()))


def bundled_heads() -> str:
    """head_revision() read from the migration files' `revision` / `down_revision` lines, without Alembic.

    Alembic's ScriptDirectory would import Alembic (~0.3 s) to answer the same; tests check both agree.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in files("migrations").joinpath("versions").iterdir():
        if not script.name.endswith(".py") or script.name.startswith("__"):
            continue
        names = _assigned(script.read_text(encoding="utf-8"))
        if "revision" in names:
            revisions.add(names["revision"])
            down = names.get("down_revision")
            parents.update([down] if isinstance(down, str) else down or ())
    return ",".join(sorted(revisions - parents))


def _assigned(source: str) -> dict[str, object]:
    """The module's top-level constants `revision` and `down_revision` (a text, a tuple or None)."""
    found: dict[str, object] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                    found[target.id] = ast.literal_eval(node.value)
    return found


def current_revision(connection: Connection) -> str | None:
    """The schema revision of a database, or None before the first migration."""
    has_table = connection.execute(text("SELECT to_regclass('alembic_version') IS NOT NULL")).scalar()
    if not has_table:
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version ORDER BY 1")).scalars().all()
    return ",".join(rows) or None
