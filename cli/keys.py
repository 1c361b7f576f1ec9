"""`gridmap user key create|list|revoke`: read-only API keys of a user, for a desktop GIS.

The same use case as `POST /auth/keys` (services.api_keys): the key is printed once on stdout and
stored only as a hash; creating and revoking are written to the audit log with actor `cli`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from cli.common import fail, friendly_errors, say, session_scope
from geo.settings import get_settings, service_secret
from services import api_keys

key_app = typer.Typer(help="Read-only API keys of a user (tiles and map data for QGIS, MapLibre).")


@contextmanager
def _session() -> Iterator[Session]:
    """A committed session with the CLI's friendly errors, a missing key among them."""
    with friendly_errors(), session_scope(get_settings()) as session:
        try:
            yield session
        except api_keys.ApiKeyNotFound as exc:
            fail(str(exc))


@key_app.command("create")
def key_create(
    user: Annotated[str, typer.Argument(help="The user the key reads as")],
    name: Annotated[str, typer.Option(help="What the key is for, e.g. QGIS on the planning office PC")],
    days: Annotated[int, typer.Option(help=f"How long it lives: 1 to {api_keys.MAX_DAYS} days")] = (
        api_keys.DEFAULT_DAYS
    ),
) -> None:
    """Create a key (printed once on stdout; only its hash is kept)."""
    with _session() as session:
        owner = api_keys.owner_named(session, user)
        secret = service_secret(get_settings())
        made = api_keys.create_key(session, owner, name, days, secret, datetime.now(UTC), actor="cli")
    until = f"{made.row['expires_at']:%Y-%m-%d %H:%M %Z}"
    say(f"key {made.row['id']} ({made.row['prefix']}…) for {user}, until {until}; shown once:")
    typer.echo(made.key)


@key_app.command("list")
def key_list(user: Annotated[str, typer.Argument(help="Whose keys")]) -> None:
    """List a user's keys: id, prefix, state, expiry, name (never the key)."""
    with _session() as session:
        rows = api_keys.list_keys(session, api_keys.owner_named(session, user), datetime.now(UTC))
    for r in rows:
        typer.echo(f"{r['id']}\t{r['prefix']}\t{r['state']}\t{r['expires_at']:%Y-%m-%d %H:%M}\t{r['name']}")


@key_app.command("revoke")
def key_revoke(
    user: Annotated[str, typer.Argument(help="Whose key")],
    key_id: Annotated[int, typer.Argument(help="The key's id (`gridmap user key list`)")],
) -> None:
    """Revoke a key at once (servers stop honouring it within their token cache's ttl)."""
    with _session() as session:
        owner = api_keys.owner_named(session, user)
        api_keys.revoke_key(session, owner, key_id, datetime.now(UTC), actor="cli")
    say(f"key {key_id} of {user} revoked")
