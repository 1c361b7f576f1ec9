"""User changes as use cases: each writes through the store and records its audit entry, whoever
asks (the CLI's `gridmap user ...`; an admin page or API would call the same); and the reads of
users and of the audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from access.roles import Role, User
from store import users


def add_user(
    session: Session,
    name: str,
    password: str,
    role: Role,
    unit: str,
    department: str | None = None,
    *,
    actor: str,
) -> User:
    """Create a user of `role` in `unit` (a department handler names their department); audited."""
    user = users.add_user(session, name, password, role, unit, department)
    users.audit(session, actor, "user_add", name, {"role": str(role), "unit": unit, "department": department})
    return user


def set_enabled(session: Session, name: str, enabled: bool, *, actor: str) -> None:
    """Disable a user (their tokens are revoked at once) or enable them again; audited."""
    users.set_disabled(session, name, not enabled)
    users.audit(session, actor, "user_enable" if enabled else "user_disable", name)


def reset_password(session: Session, name: str, password: str, *, actor: str) -> None:
    """Set a new password (forgets the name's failed logins, revokes its tokens); audited."""
    users.reset_password(session, name, password)
    users.audit(session, actor, "user_reset_password", name)


def list_users(session: Session) -> list[dict[str, Any]]:
    """Every user (name, role, unit, department, state), without password hashes."""
    return users.list_users(session)


def audit_log(
    session: Session,
    *,
    action: str | None = None,
    actor: str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """The audit log, newest first, of one action or actor if given."""
    return users.read_audit(session, action=action, actor=actor, limit=limit, offset=offset)
