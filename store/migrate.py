"""Apply the Alembic migrations that live in the `migrations` package."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    """An Alembic config for the bundled migrations, on a URL or an open connection."""
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
    command.upgrade(alembic_config(url), "head")


def head_revision() -> str:
    """The newest schema revision the bundled migrations know (heads joined by "," while branched)."""
    from alembic.script import ScriptDirectory

    return ",".join(sorted(ScriptDirectory.from_config(alembic_config()).get_heads()))


def current_revision(connection: Connection) -> str | None:
    """The schema revision of a database, or None before the first migration."""
    has_table = connection.execute(text("SELECT to_regclass('alembic_version') IS NOT NULL")).scalar()
    if not has_table:
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version ORDER BY 1")).scalars().all()
    return ",".join(rows) or None
