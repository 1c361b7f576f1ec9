"""`gridmap user ...`: user accounts, each with a role and the unit it acts in (and below)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import fail, friendly_errors, say, session_scope
from cli.keys import key_app
from geo.settings import get_settings

user_app = typer.Typer(help="User accounts: each has a role and a unit it acts in (and below).")
user_app.add_typer(key_app, name="key")  # read-only API keys (cli/keys.py)


def _new_password(given: str | None) -> str:
    """The given password, or a generated one that is printed once."""
    if given:
        return given
    import secrets

    password = secrets.token_urlsafe(12)
    say(f"generated password (shown once): {password}")
    return password


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="User name (letters, digits, _ . @ -)")],
    role: Annotated[str, typer.Option(help="admin, planner, dispatcher, field_worker, department or viewer")],
    unit: Annotated[str, typer.Option(help="Code of the unit the user acts in (and below it)")],
    password: Annotated[
        str | None, typer.Option(help="Password (8+ characters); generated if omitted")
    ] = None,
    department: Annotated[
        str | None, typer.Option(help="For role department: its code (data/departments.csv)")
    ] = None,
) -> None:
    """Create a user."""
    from access.roles import Role
    from services import users

    if role not in Role.__members__.values():
        fail(f"unknown role {role!r}; choose one of {', '.join(Role)}")
    with friendly_errors(), session_scope(get_settings()) as session:
        user = users.add_user(
            session, name, _new_password(password), Role(role), unit, department, actor="cli"
        )
    say(f"user {user.username} ({user.role} in {user.unit_code}) created")


@user_app.command("list")
def user_list() -> None:
    """List users: name, role, unit, department, state."""
    from services import users

    with friendly_errors(), session_scope(get_settings()) as session:
        rows = users.list_users(session)
    for u in rows:
        state = "disabled" if u["disabled"] else "active"
        typer.echo(f"{u['username']}\t{u['role']}\t{u['unit_code']}\t{u['department'] or '-'}\t{state}")


@user_app.command("disable")
def user_disable(
    name: Annotated[str, typer.Argument(help="User name")],
    enable: Annotated[bool, typer.Option("--enable", help="Enable again instead")] = False,
) -> None:
    """Disable a user (their tokens are revoked at once), or enable them again."""
    from services import users

    with friendly_errors(), session_scope(get_settings()) as session:
        users.set_enabled(session, name, enable, actor="cli")
    say(f"user {name} {'enabled' if enable else 'disabled'}")


@user_app.command("reset-password")
def user_reset_password(
    name: Annotated[str, typer.Argument(help="User name")],
    password: Annotated[str | None, typer.Option(help="New password; generated if omitted")] = None,
) -> None:
    """Set a new password (forgets its failed logins, revokes its tokens)."""
    from services import users

    with friendly_errors(), session_scope(get_settings()) as session:
        users.reset_password(session, name, _new_password(password), actor="cli")
    say(f"password of {name} reset; their old tokens are revoked")
