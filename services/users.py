"""User changes as use cases: each writes through the store and records its audit entry, whoever
asks (the CLI's `gridmap user ...`; an admin page or API would call the same); and the reads of
users and of the audit log."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session

from access.roles import Role, User
from store import users
from store.users import AuditQuery as AuditQuery  # what GET /audit asks for, with the read answering it


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


AUDIT_PAGE = 1000  # the most entries one read of the audit log returns (GET /audit's `limit`)


def audit_log(session: Session, query: AuditQuery) -> list[dict[str, Any]]:
    """The audit log, newest first, of one action or actor if given: a page of at most AUDIT_PAGE
    entries, whatever the caller asked (the log grows without end; a read must not)."""
    page = replace(query, limit=max(1, min(query.limit, AUDIT_PAGE)), offset=max(0, query.offset))
    return users.read_audit(session, page)
