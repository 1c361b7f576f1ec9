"""`gridmap ha`: a local three-node Patroni + etcd cluster for development, tests and benchmarks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from geo.settings import get_settings
from store.cluster import ClusterError

if TYPE_CHECKING:
    from store.ha_cluster import LocalHaCluster

ha_app = typer.Typer(
    help="Local high-availability cluster (three PostgreSQL nodes under Patroni, one etcd); "
    "the embedded single server stays the default",
    no_args_is_help=True,
)


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _cluster() -> LocalHaCluster:
    from store.ha_cluster import LocalHaCluster  # here: only `gridmap ha` needs it

    return LocalHaCluster(get_settings())


@ha_app.command("up")
def ha_up() -> None:
    """Start etcd and three Patroni nodes (created on first use), migrate, print the URL to use."""
    from store.engine import normalize_url
    from store.migrate import upgrade

    try:
        cluster = _cluster()
        url = cluster.up(progress=_say)
        upgrade(normalize_url(url))
    except ClusterError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(1) from None
    _say("cluster ready; point the service at it with")
    typer.echo(f"GRIDMAP_DATABASE_URL='{url}'")


@ha_app.command("down")
def ha_down() -> None:
    """Stop the nodes and etcd (their data stays for the next `up`)."""
    _cluster().down(progress=_say)
    _say("HA cluster stopped")


@ha_app.command("status")
def ha_status() -> None:
    """Each node's role (leader, sync_standby, replica), state and replication lag."""
    members = _cluster().members()
    if not members:
        _say("no node answers: `gridmap ha up` starts the cluster")
        raise typer.Exit(3)
    for m in members:
        lag = "" if m.lag is None else f"  lag {m.lag} bytes"
        typer.echo(f"{m.name}  port {m.port}  {m.role:<13} {m.state}{lag}")


@ha_app.command("switchover")
def ha_switchover() -> None:
    """A planned switchover from the leader to the synchronous standby."""
    try:
        old, new = _cluster().switchover(progress=_say)
    except ClusterError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(1) from None
    _say(f"{new} leads now (was {old})")


@ha_app.command("url")
def ha_url() -> None:
    """Print the multi-host URL of the cluster."""
    typer.echo(_cluster().url())
