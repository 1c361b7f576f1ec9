"""What every `gridmap` command shares: messages, the ready database, a session, errors as messages."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

import typer
from sqlalchemy.orm import Session

from cli.errors import refusals
from geo.settings import Settings
from store.engine import engine_for, resolve_database_url, session_factory

DEFAULT_PORT = 8000


def say(message: str) -> None:
    """Progress and results for people go to stderr, so stdout stays clean for data."""
    typer.echo(message, err=True)


def fail(message: str, code: int = 1) -> None:
    """Stop with a message that says what went wrong (no traceback)."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def ready_url(settings: Settings) -> str:
    """The database URL, with the embedded cluster started and the schema migrated."""
    from store.migrate import upgrade_if_behind

    url = resolve_database_url(settings, progress=say)
    upgrade_if_behind(engine_for(url))  # a current schema costs one statement, not Alembic's start
    return url


@contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """A session on the ready database, committed on success and rolled back on any error."""
    with session_factory(engine_for(ready_url(settings)))() as session, session.begin():
        yield session


def friendly_errors() -> AbstractContextManager[None]:
    """Turn the errors a user can fix into a message and an exit code (cli.errors, the one map)."""
    return refusals()
