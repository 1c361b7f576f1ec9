"""`gridmap db ...`: the embedded PostGIS cluster, or the database GRIDMAP_DATABASE_URL names."""

from __future__ import annotations

import typer

from cli.common import fail, friendly_errors, ready_url, say
from geo.settings import get_settings
from store.cluster import EmbeddedCluster

db_app = typer.Typer(
    help="The database: the embedded PostGIS cluster, or the one GRIDMAP_DATABASE_URL names."
)


@db_app.command("start")
def db_start() -> None:
    """Start the embedded PostGIS cluster (created on first use) and migrate it."""
    settings = get_settings()
    with friendly_errors():
        if settings.database_url:
            fail("GRIDMAP_DATABASE_URL is set: gridmap uses that server and never starts its own")
        ready_url(settings)
        say(f"embedded PostGIS running: {EmbeddedCluster(settings).status().message}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded cluster (its data stays for the next start)."""
    with friendly_errors():
        EmbeddedCluster(get_settings()).stop()
        say("embedded PostGIS stopped")


@db_app.command("status")
def db_status() -> None:
    """Say which database is used and whether it is running."""
    settings = get_settings()
    if settings.database_url:
        say("using GRIDMAP_DATABASE_URL (an external server)")
        return
    with friendly_errors():
        status = EmbeddedCluster(settings).status()
        say(f"embedded PostGIS: {status.message}")
        if not status.running:
            raise typer.Exit(3)  # like pg_ctl status: scripts can test it


@db_app.command("url")
def db_url() -> None:
    """Print the SQLAlchemy URL of the database (for psql, scripts, GRIDMAP_DATABASE_URL)."""
    settings = get_settings()
    with friendly_errors():
        typer.echo(settings.database_url or EmbeddedCluster(settings).url())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations (which also create PostGIS) to the configured or embedded database."""
    with friendly_errors():
        ready_url(get_settings())
        say("schema is up to date")
