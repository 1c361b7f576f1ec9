"""`gridmap`: the command line of the service (database, demo, import/export, batch assignment, serve).

The commands live in modules named for what they do (cli.db, cli.data, cli.plans, cli.users,
cli.coverage, cli.ha), registered here; what they share is in cli.common.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import DEFAULT_PORT, friendly_errors, ready_url, say, session_scope
from cli.coverage import coverage_app
from cli.data import data_app
from cli.db import db_app
from cli.ha import ha_app
from cli.plans import plan_app
from cli.users import user_app
from geo.settings import get_settings
from store.engine import engine_for

app = typer.Typer(
    help="Grid-mapping service for grid-based community governance (网格化治理).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db_app, name="db")
app.add_typer(ha_app, name="ha")
app.add_typer(data_app)  # demo, import, export, assign, crosswalk: top-level commands
app.add_typer(plan_app, name="plan")
app.add_typer(user_app, name="user")
app.add_typer(coverage_app)  # coverage: a top-level command


@app.command()
def escalate() -> None:
    """Escalate overdue cases one tier (what `serve` does every minute; for cron on other setups)."""
    from cases.rules import Rules
    from services.escalation import escalate_overdue

    settings = get_settings()
    with friendly_errors(), session_scope(settings) as session:
        moved = escalate_overdue(session, Rules.load(settings), actor="cli", batch=100_000)
    say(f"escalated {moved} overdue case(s)" if moved else "no overdue cases to escalate")


@app.command("expire-patrols")
def expire_patrols() -> None:
    """Delete patrol tracks older than GRIDMAP_PATROL_RETENTION_DAYS (serve does it every hour)."""
    from services.patrols import expire

    settings = get_settings()
    with friendly_errors(), session_scope(settings) as session:
        deleted = expire(session, settings.patrol_retention_days)
    say(f"deleted {deleted} patrol track(s) older than {settings.patrol_retention_days} days")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = DEFAULT_PORT,
    workers: Annotated[int, typer.Option(min=1, help="Server processes (they share the live feed)")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Serve the API (and map) on the configured or embedded database."""
    import uvicorn

    from api.app import TOKEN_CACHE_S, create_app

    settings = get_settings()
    with friendly_errors():
        url = ready_url(settings)
    say(f"serving on http://{host}:{port} (API docs: http://{host}:{port}/docs)")
    # Forwarded headers are believed only from GRIDMAP_TRUSTED_PROXIES, which the app applies
    # itself (api.app); uvicorn's own handling would believe any caller on 127.0.0.1 (its default
    # forwarded_allow_ips), so it stays off.
    proxies = {"proxy_headers": False, "forwarded_allow_ips": settings.trusted_proxies or ""}
    if workers > 1:  # each process builds its app from the environment's settings
        uvicorn.run(
            "api.app:create_app", factory=True, host=host, port=port, workers=workers, log_level=log_level,
            **proxies,
        )  # fmt: skip
        return
    engine = engine_for(url, service=True, wait_s=settings.database_wait_s)
    app_ = create_app(settings, engine=engine, locate_from_memory=True, token_cache_s=TOKEN_CACHE_S)
    uvicorn.run(app_, host=host, port=port, log_level=log_level, **proxies)


if __name__ == "__main__":
    app()
