"""Signing in and out as use cases: a login (audited whether it succeeds or fails), a refresh, a
logout (audited); the access.lockout policy decides the delays after failed logins."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from access.lockout import LoginPolicy
from store import users
from store.users import LoginFailed, Tokens

__all__ = ["LoginFailed", "Tokens", "log_in", "log_out", "refresh"]


def log_in(
    session: Session,
    username: str,
    password: str,
    *,
    secret: str,
    policy: LoginPolicy,
    address: str,
    kinds: tuple[str, ...],
    now: datetime | None = None,
) -> Tokens:
    """Tokens of `kinds` for a name and its password, the login audited; a failure is audited too
    (with its reason) and raised as LoginFailed, which says the same for every cause."""
    now = now or datetime.now(UTC)
    try:
        user = users.authenticate(session, username, password, now, address, policy)
    except LoginFailed as e:
        users.audit(session, username, "login_failed", details={"reason": e.reason}, ip=address)
        raise
    tokens = users.issue(session, user, secret, now, kinds=kinds)
    users.audit(session, user.username, "login", details={"kinds": list(kinds)}, ip=address)
    return tokens


def refresh(session: Session, refresh_token: str, *, secret: str, now: datetime | None = None) -> Tokens:
    """A new access token and a new refresh token for a refresh token (used up); LoginFailed if it
    is unknown, expired or revoked."""
    _, tokens = users.refresh(session, refresh_token, secret, now or datetime.now(UTC))
    return tokens


def log_out(
    session: Session,
    token: str,
    *,
    secret: str,
    username: str | None,
    address: str,
    now: datetime | None = None,
) -> bool:
    """Revoke a token with everything of the same login; audited for a known user. Whether it was revoked."""
    revoked = users.revoke(session, token, secret, now or datetime.now(UTC))
    if revoked and username:
        users.audit(session, username, "logout", ip=address)
    return revoked
