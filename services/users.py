"""User changes as use cases: each writes through the store and records its audit entry, whoever
asks (today the CLI's `gridmap user ...`; an admin page or API would call the same)."""

from __future__ import annotations

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
